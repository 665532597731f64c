/** Every view keeps its state in the URL (path and query), so a link
 * reproduces exactly what its sender saw and the back button walks
 * through what the user did. */
import { computed, signal } from '@preact/signals';

export const location_ = signal({ path: window.location.pathname, search: window.location.search });

window.addEventListener('popstate', () => {
  location_.value = { path: window.location.pathname, search: window.location.search };
});

export const params = computed(() => new URLSearchParams(location_.value.search));

export function navigate(to: string, replace = false) {
  const url = new URL(to, window.location.href);
  if (url.pathname + url.search === window.location.pathname + window.location.search) return;
  if (replace) history.replaceState(null, '', url.pathname + url.search + url.hash);
  else history.pushState(null, '', url.pathname + url.search + url.hash);
  location_.value = { path: url.pathname, search: url.search };
}

/** Sets some query parameters (empty values remove them). Small changes
 * such as the selected span replace the history entry; filters push one. */
export function setParams(update: Record<string, string | number | boolean | null | undefined>, push = false) {
  const next = new URLSearchParams(location_.value.search);
  for (const [k, v] of Object.entries(update)) {
    if (v === null || v === undefined || v === '' || v === false) next.delete(k);
    else next.set(k, String(v));
  }
  const search = next.toString();
  navigate(location_.value.path + (search ? `?${search}` : ''), !push);
}

export function param(name: string): string {
  return params.value.get(name) ?? '';
}

/** A comma-separated set in one parameter (collapsed rows, say). */
export function paramSet(name: string): Set<string> {
  const raw = params.value.get(name);
  return new Set(raw ? raw.split(',').filter(Boolean) : []);
}

/** Whether a click should open in place (not a new tab or window). */
export function isPlainClick(e: MouseEvent): boolean {
  return e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey;
}
