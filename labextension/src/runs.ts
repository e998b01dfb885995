import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import type { INodeRecord, IRunMeta } from '@autoresearch/treeview';

/**
 * A run as the views show it: the header and node records the server builds with the package's
 * own Python (autoresearch_jupyter/lab/views.py: the notebook widget's records), never a replay of
 * the journal here.
 */
export interface IRunView {
  id: string;
  name: string | null;
  source: string | null;
  createdAt: number | null;
  state: string;
  /** The run is being written by a live process: worth polling. */
  live: boolean;
  meta: IRunMeta;
  /** Every node's record, by id; empty in the sidebar's listing (it shows only the header). */
  records: INodeRecord[];
  /** The end of each running node's output.log, by node id (the server caps it per read). */
  liveTails: Record<string, { tail: string; bytes: number }>;
  warnings: string[];
}

/** A run folder as the views show it, or why it cannot be read. */
export interface IRunEntry {
  /** The run folder's API path. */
  path: string;
  id: string;
  /** The API path of the notebook the run came from, when the server could tell. */
  notebook: string | null;
  view: IRunView | null;
  error: string | null;
}

/** The server's form of a run's view (autoresearch_jupyter/lab/views.py, RunViews._summary). */
interface IServerView {
  id: string;
  name: string | null;
  source: string | null;
  created_at: number | null;
  state: string;
  live: boolean;
  meta: IRunMeta;
  warnings: string[];
}

interface IListedRun {
  id: string;
  notebook: string | null;
  view: IServerView | null;
  error: string | null;
}

interface IViewReply {
  notebook: string | null;
  cursor: string | null;
  full: boolean;
  view: IServerView | null;
  records: INodeRecord[];
  live?: Record<string, { tail: string; bytes: number }>;
  error: string | null;
}

/** One run's records between reads: the server sends only what changed since `cursor`. */
class RecordCache {
  cursor = '';
  records = new Map<number, INodeRecord>();
}

const NO_SERVER =
  'the autoresearch server extension is not enabled: run `jupyter server extension enable autoresearch_jupyter` and restart the server';

function toView(
  view: IServerView,
  records: INodeRecord[],
  liveTails: Record<string, { tail: string; bytes: number }> = {}
): IRunView {
  return {
    id: view.id,
    name: view.name,
    source: view.source,
    createdAt: view.created_at,
    state: view.state,
    live: view.live,
    meta: view.meta,
    records,
    liveTails,
    warnings: view.warnings
  };
}

/**
 * Reads runs directories through the server extension's endpoint (autoresearch_jupyter.lab.server),
 * which serves the hidden `.autoresearch/` folder the Contents API refuses, replays the journals in
 * Python and sends a run's node records incrementally.
 */
export class RunReader {
  constructor(serverSettings: ServerConnection.ISettings) {
    this._settings = serverSettings;
  }

  /**
   * The runs in `runsDir` (an API path), newest first, each with its header (no records); none
   * when the folder does not exist. `only` keeps one run id.
   */
  async list(runsDir: string, options: { only?: string } = {}): Promise<IRunEntry[]> {
    const data = await this._get<{ runs: IListedRun[] }>('autoresearch/api/runs', { dir: runsDir });
    if (data === null) {
      return []; // the server does not show this folder
    }
    return data.runs
      .filter(run => options.only === undefined || run.id === options.only)
      .map(run => ({
        path: PathExt.join(runsDir, run.id),
        id: run.id,
        notebook: run.notebook,
        view: run.view ? toView(run.view, []) : null,
        error: run.error
      }))
      .sort((a, b) => (b.view?.createdAt ?? 0) - (a.view?.createdAt ?? 0) || (a.id < b.id ? 1 : -1));
  }

  /** One run (`path`: its folder's API path) with every node's record, brought up to date. */
  async run(path: string): Promise<IRunEntry | null> {
    const runsDir = PathExt.dirname(path);
    const id = PathExt.basename(path);
    let cache = this._cache.get(path);
    if (!cache) {
      cache = new RecordCache();
      this._cache.set(path, cache);
    }
    const reply = await this._get<IViewReply>('autoresearch/api/runs/view', { dir: runsDir, run: id, since: cache.cursor });
    if (reply === null) {
      return null; // no such run
    }
    const entry: IRunEntry = { path, id, notebook: reply.notebook, view: null, error: null };
    if (reply.error !== null || reply.view === null) {
      cache.cursor = '';
      cache.records.clear();
      return { ...entry, error: reply.error ?? 'the run cannot be read' };
    }
    if (reply.full) {
      cache.records.clear();
    }
    for (const record of reply.records) {
      cache.records.set(record.id, record);
    }
    cache.cursor = reply.cursor ?? '';
    const records = [...cache.records.values()].sort((a, b) => a.id - b.id);
    return { ...entry, view: toView(reply.view, records, reply.live ?? {}) };
  }

  /** GET a JSON endpoint; null for a 404 the extension answered (not shown), an error if absent. */
  private async _get<T>(endpoint: string, query: Record<string, string>): Promise<T | null> {
    const url = URLExt.join(this._settings.baseUrl, endpoint) + URLExt.objectToQueryString(query);
    const response = await ServerConnection.makeRequest(url, {}, this._settings);
    if (response.status === 404) {
      const body = await response.json().catch(() => null);
      if (body && typeof body === 'object' && 'message' in body) {
        return null;
      }
      throw new Error(NO_SERVER);
    }
    if (!response.ok) {
      throw await ServerConnection.ResponseError.create(response);
    }
    return (await response.json()) as T;
  }

  private _settings: ServerConnection.ISettings;
  private _cache = new Map<string, RecordCache>();
}

/** The runs directory for a notebook (or a folder, given with a trailing "/"). */
export function runsDirFor(path: string, runsDir: string): string {
  const folder = path.endsWith('/') || path === '' ? path : PathExt.dirname(path);
  return PathExt.join(folder, runsDir).replace(/^\/+/, '');
}
