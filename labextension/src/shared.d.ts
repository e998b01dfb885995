// Types of the shared browser modules in autoresearch_jupyter/report/static/, which the notebook widget
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
    ui: { selected: number | null; collapsed: Set<number>; unfolded: Set<number>; fold: boolean };
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
  export function mountTreeView(el: HTMLElement, store: ITreeStore, actions?: ITreeActions): () => void;
}

declare module '@autoresearch/journal' {
  import type { INodeRecord, IRunMeta } from '@autoresearch/treeview';

  export class JournalError extends Error {}

  export interface IReplay {
    state: string;
    warnings: string[];
    events: number;
    [key: string]: unknown;
  }

  /** A journal replayed in pieces of whole lines, as the file grows. */
  export class JournalReplay {
    constructor(source?: string);
    feed(text: string): this;
    result(): IReplay;
  }

  export interface IRunInfo {
    id?: string;
    name?: string | null;
    source?: string | null;
    protocol: { metric: string; maximize: boolean; time_budget?: number };
    settings?: Record<string, unknown>;
    [key: string]: unknown;
  }

  export interface IRunView {
    id: string;
    name: string | null;
    source: string | null;
    createdAt: number | null;
    info: IRunInfo;
    state: string;
    stale: boolean;
    live: boolean;
    meta: IRunMeta;
    records: INodeRecord[];
    warnings: string[];
  }

  export function parseRunInfo(text: string, source?: string): IRunInfo;
  export function runView(options: {
    id: string;
    info: IRunInfo;
    replay: IReplay;
    modified?: number | null;
    staleAfter?: number | null;
    now?: number;
  }): IRunView;
  export function cellCode(code: string): string;
  export function nodeCell(options: {
    code: string;
    runId?: string;
    nodeId?: number | null;
    metricName?: string | null;
    metric?: number | null;
  }): string;
}
