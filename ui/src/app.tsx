import { useState } from 'preact/hooks';
import { needsToken, setToken } from './api';
import { Link } from './components/common';
import { location_ } from './router';
import { ColdStartsView } from './views/coldstarts';
import { FlowView } from './views/flow';
import { HopsView } from './views/hops';
import { MapView } from './views/map';
import { SearchView } from './views/search';
import { SqlView } from './views/sql';
import { TraceView } from './views/trace';

const NAV: [string, string][] = [
  ['/search', 'Search'],
  ['/map', 'Map'],
  ['/cold-starts', 'Cold starts'],
  ['/hops', 'Hops'],
  ['/sql', 'SQL'],
];

function route(path: string) {
  let m: RegExpExecArray | null;
  if ((m = /^\/traces\/([^/]+)\/?$/.exec(path))) return <TraceView key={m[1]} traceId={m[1]} />;
  if ((m = /^\/flows\/([^/]+)\/?$/.exec(path))) return <FlowView key={m[1]} traceId={m[1]} />;
  switch (path.replace(/\/$/, '') || '/') {
    case '/':
    case '/search':
      return <SearchView />;
    case '/map':
      return <MapView />;
    case '/cold-starts':
      return <ColdStartsView />;
    case '/hops':
      return <HopsView />;
    case '/sql':
      return <SqlView />;
    default:
      return <div class="empty">No view at {path}.</div>;
  }
}

function TokenPrompt() {
  const [value, setValue] = useState('');
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value);
        location.reload();
      }}
    >
      This Seam asks for an API token.{' '}
      <input type="password" aria-label="API token" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      <button type="submit">Use token</button>
    </form>
  );
}

export function App() {
  const path = location_.value.path;
  const section = path === '/' ? '/search' : path.startsWith('/traces') || path.startsWith('/flows') ? '/search' : path;
  return (
    <div class="shell">
      <header class="top">
        <Link href="/search" class="brand">
          Seam
        </Link>
        <nav>
          {NAV.map(([href, label]) => (
            <Link href={href} class={section.startsWith(href) ? 'active' : undefined}>
              {label}
            </Link>
          ))}
        </nav>
      </header>
      {needsToken.value && <TokenPrompt />}
      <main>{route(path)}</main>
    </div>
  );
}
