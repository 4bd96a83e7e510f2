/** sandstack's own version, from its package.json. */
import { readFileSync } from 'node:fs';

let cached: string | undefined;
export function sandstackVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
