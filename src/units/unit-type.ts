// The one shape every unit type has. The manager and the control layer talk to units only through
// this interface and the registry in ./registry.ts; nothing outside switches on a unit's kind.

/** systemd's generic active state, derived from each type's own sub-state. */
export type ActiveState = 'inactive' | 'activating' | 'active' | 'deactivating' | 'reloading' | 'failed';

/** Whether a unit's configuration was found and read. Device units synthesised from udev are 'loaded'. */
export type LoadState = 'loaded' | 'not-found' | 'bad-setting' | 'error' | 'masked';

export interface UnitType<State extends string, Data> {
  /** File suffix including the dot: '.device'. */
  readonly suffix: string;
  /** The sub-state a new unit starts in. */
  readonly initialState: State;
  /** Map the type's own state onto the generic active state. */
  activeState(state: State): ActiveState;
  /** A one-line description when the unit file gives none. */
  describe(name: string, data: Data): string;
  serialize(data: Data): unknown;
  deserialize(value: unknown): Data;
}

/** The row `list-units` prints for one unit. */
export interface UnitSummary {
  name: string;
  load: LoadState;
  active: ActiveState;
  sub: string;
  description: string;
}
