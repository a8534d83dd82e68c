// .target units: synchronization points with no processes of their own. Active while started;
// everything they do happens through their dependencies in the job engine.
import type { ActiveState, JobOutcome, LoadState, SerializedUnit, UnitInstance } from './unit-type';
import type { LoadedUnitFile } from './config-types';

export type TargetState = 'dead' | 'active';

export class TargetUnit implements UnitInstance {
  readonly suffix = '.target';
  state: TargetState = 'dead';
  since = Date.now();
  readonly load: LoadState;

  constructor(
    readonly name: string,
    readonly file: LoadedUnitFile,
    private readonly onStateChange: (from: TargetState, to: TargetState) => void,
  ) {
    this.load = file.loadState;
  }

  activeState(): ActiveState {
    return this.state === 'active' ? 'active' : 'inactive';
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    return this.file.unit.description ?? this.name;
  }

  start(): JobOutcome {
    if (this.load !== 'loaded') return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    this.setState('active');
    return 'done';
  }

  stop(): JobOutcome {
    this.setState('dead');
    return 'done';
  }

  reload(): JobOutcome {
    return { failed: 'failed', reason: `${this.name}: targets cannot be reloaded` };
  }

  canReload(): boolean {
    return false;
  }

  properties(): Record<string, unknown> {
    return {};
  }

  serialize(): SerializedUnit {
    return { state: this.state };
  }

  /** A target has nothing running: its state is taken back as it was (no job, nothing pulled in). */
  deserialize(data: SerializedUnit): boolean {
    if (data.state !== 'active' && data.state !== 'dead') return false;
    if (this.load === 'loaded') this.setState(data.state);
    return true;
  }

  private setState(next: TargetState): void {
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    this.onStateChange(from, next);
  }
}
