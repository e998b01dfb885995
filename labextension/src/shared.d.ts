// Types of the shared browser module in autoresearch_jupyter/report/static/, which the notebook widget
// loads too; webpack.config.js points these module names at the files.

declare module '@autoresearch/treeview' {
  /** One node, as viewstate.node_record builds it. */
  export interface INodeRecord {
    id: number;
    parent: number | null;
    operator: string;
    status: string;
    kind: string;
    metric: number | null;
    delta: number | null;
    kept: boolean | null;
    plan: string;
    reason: string | null;
    code?: string | null;
    v: number;
    [key: string]: unknown;
  }

  /** The header, as viewstate.run_meta builds it. */
  export interface IRunMeta {
    run_id: string;
    state: string;
    reason: string | null;
    metric: string;
    direction: 'maximize' | 'minimize';
    steps: number | null;
    nodes: number;
    done: number;
    running: number;
    best_id: number | null;
    best_metric: number | null;
    baseline_metric: number | null;
    improvement: number | null;
    improvement_rel: number | null;
    [key: string]: unknown;
  }

  export interface ITreeStore {
    nodes: Map<number, INodeRecord>;
    meta: Partial<IRunMeta>;
    seq: number;
    ui: {
      selected: number | null;
      picked: boolean;
      collapsed: Set<number>;
      unfolded: Set<number>;
      fold: boolean;
      plot: boolean;
    };
    live: Record<string, { tail: string; bytes: number }>;
    setLive(live: Record<string, { tail: string; bytes: number }>): void;
    setMeta(meta: IRunMeta): void;
    applySnapshot(snapshot: { seq: number; nodes: INodeRecord[] }): void;
    code(id: number): string | null;
    subscribe(listener: () => void): () => void;
    changed(): void;
  }

  /** What the view may ask of a kernel; the run view has none. */
  export interface ITreeActions {
    exportNode?(id: number | null): Promise<{ node: number; path: string }>;
    stop?(): Promise<unknown>;
  }

  export function createStore(): ITreeStore;
  /** "9 nodes (baseline + 8 of 8)": the one count of nodes every view says. */
  export function nodeCount(meta: Partial<IRunMeta>): string;
  export function mountTreeView(el: HTMLElement, store: ITreeStore, actions?: ITreeActions): () => void;
}
