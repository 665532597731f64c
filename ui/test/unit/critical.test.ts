import { describe, expect, it } from 'vitest';
import { criticalPath, type PathSpan } from '../../src/layout/critical';

const s = (id: string, start: number, end: number, children: PathSpan[] = []): PathSpan => ({ id, start, end, children });

describe('critical path', () => {
  it('follows the child that finishes last, and the parent between children', () => {
    // root 0..100; a 10..40 and b 20..90 run in parallel; b holds the root up.
    const tree = s('root', 0, 100, [s('a', 10, 40), s('b', 20, 90)]);
    const path = criticalPath([tree]).map((p) => [p.id, p.start, p.end]);
    expect(path).toEqual([
      ['root', 0, 20],
      ['b', 20, 90],
      ['root', 90, 100],
    ]);
  });

  it('takes sequential children one after another', () => {
    const tree = s('root', 0, 100, [s('a', 10, 40), s('b', 50, 90)]);
    expect(criticalPath([tree]).map((p) => p.id)).toEqual(['root', 'a', 'root', 'b', 'root']);
  });

  it('follows a message into the consumer and marks the wait', () => {
    // producer span 10..20 in trace 1; its consumer runs 4 s later.
    const consumer = s('consume', 4e9, 4.3e9, [s('db', 4.1e9, 4.25e9)]);
    const producer = s('publish', 10, 20, [consumer]);
    const root = s('checkout', 0, 30, [producer]);
    const path = criticalPath([root]);
    expect(path.map((p) => [p.id, p.wait])).toEqual([
      ['checkout', false],
      ['publish', false],
      ['publish', true],
      ['consume', false],
      ['db', false],
      ['consume', false],
    ]);
    const wait = path.find((p) => p.wait)!;
    expect([wait.start, wait.end]).toEqual([20, 4e9]);
  });

  it('is empty for no spans', () => {
    expect(criticalPath([])).toEqual([]);
  });
});
