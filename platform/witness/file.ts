import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Anchor, parseAnchor, type Witness } from './port.ts';

/**
 * An append-only file of heads, one JSON line each, written with O_APPEND and fsync'd before
 * `publish` resolves. Put it on another volume than the database (ideally one the database's
 * operators cannot rewrite: a WORM mount, a chattr +a file, a different host's share).
 */
export class FileWitness implements Witness {
  readonly name: string;
  private readonly path: string;

  constructor(path: string) {
    this.path = path;
    this.name = `file:${path}`;
  }

  async publish(anchor: Anchor): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, `${JSON.stringify(anchor)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async read(store: string): Promise<Anchor[]> {
    if (!existsSync(this.path)) return [];
    const anchors: Anchor[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue; // a line torn by a crash mid-write is not an anchor
      }
      const a = parseAnchor(parsed);
      if (a && a.store === store) anchors.push(a);
    }
    return anchors;
  }

  async close(): Promise<void> {}
}
