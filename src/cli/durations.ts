/** Durations as the user types them (`--ttl 2h`) and as the CLI shows them (`1h left`). */
import ms from 'ms';
import { SandstackError } from '../errors.js';

/** A duration the user typed (`2h`, `30m`, `7d`), as ms; a usage error otherwise. */
export function parseDuration(option: string, value: string): number {
  const n = ms(value as ms.StringValue) as number | undefined;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw new SandstackError('SANDSTACK_USAGE', `${option} "${value}" is not a duration.`, { hint: 'Give a duration such as 2h, 30m or 7d.' });
  }
  return n;
}

/** `1h 59m left`, or `expired`, for an instance with a ttl. */
export function expiryText(i: { expiresInMs?: number }): string {
  if (i.expiresInMs === undefined) return '-';
  return i.expiresInMs <= 0 ? 'expired' : `${ms(i.expiresInMs, { long: false })} left`;
}
