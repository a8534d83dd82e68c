// Per-unit log rings for `triggerctl logs UNIT [-n N] [-f]`: every log record that names a unit
// (its own lines and its processes' output) is kept in a bounded ring for that unit, and streamed
// to followers. Bound: `perUnit` records per unit, `maxUnits` units (the least recently written
// unit's ring is dropped first).
import { Subject } from '../util/rx';

export interface UnitLogRecord {
  /** Wall-clock ms. */
  time: number;
  level: number;
  unit: string;
  msg: string;
  /** 'stdout' | 'stderr' for process output; absent for the daemon's own lines. */
  stream?: string;
  pid?: number;
}

export class UnitLogRings {
  private readonly rings = new Map<string, UnitLogRecord[]>();
  readonly records$ = new Subject<UnitLogRecord>();

  constructor(
    private readonly perUnit = 1000,
    private readonly maxUnits = 4096,
  ) {}

  append(record: UnitLogRecord): void {
    let ring = this.rings.get(record.unit);
    if (ring === undefined) {
      if (this.rings.size >= this.maxUnits) {
        const oldest = this.rings.keys().next();
        if (!oldest.done) this.rings.delete(oldest.value);
      }
      ring = [];
    } else {
      // Re-insert so Map order is least-recently-written first.
      this.rings.delete(record.unit);
    }
    this.rings.set(record.unit, ring);
    ring.push(record);
    if (ring.length > this.perUnit) ring.splice(0, ring.length - this.perUnit);
    this.records$.next(record);
  }

  tail(unit: string, n: number): UnitLogRecord[] {
    const ring = this.rings.get(unit) ?? [];
    return n >= ring.length ? [...ring] : ring.slice(ring.length - n);
  }
}
