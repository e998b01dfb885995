import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { Contents, ServerConnection } from '@jupyterlab/services';
import {
  IRunInfo,
  IRunView,
  JournalReplay,
  parseRunInfo,
  runView
} from '@autoresearch/journal';

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

const ENDED = new Set(['finished', 'stopped', 'failed']);

interface IStat {
  mtime: number;
  size: number | null;
}

interface IListed {
  id: string;
  journal: IStat | null;
  notebook: string | null;
}

/** What is kept about one run between reads: its replay grows with its journal. */
class RunCache {
  info: IRunInfo | null = null;
  replay = new JournalReplay();
  offset = 0;
  stat: IStat | null = null;
  entry: IRunEntry;

  constructor(path: string, id: string) {
    this.entry = { path, id, notebook: null, view: null, error: null };
  }

  get ended(): boolean {
    return this.entry.view !== null && ENDED.has(this.entry.view.state);
  }
}

/**
 * Reads runs directories: through the server extension's endpoint (autoresearch_jupyter.lab.server),
 * which serves the hidden `.autoresearch/` folder and sends only what a journal gained since the
 * last read, or, where that endpoint is missing, through the Contents API (which needs
 * `ContentsManager.allow_hidden` for hidden folders, and reads whole journals).
 */
export class RunReader {
  constructor(contents: Contents.IManager, serverSettings: ServerConnection.ISettings) {
    this._contents = contents;
    this._settings = serverSettings;
  }

  /**
   * The runs in `runsDir` (an API path), newest first; none when the folder does not exist.
   * A run is read again only when its journal changed. `only` limits the reading to one run id;
   * `recheckEnded: false` lets the Contents API fallback skip ended runs (cheap polling).
   */
  async list(runsDir: string, options: { only?: string; recheckEnded?: boolean } = {}): Promise<IRunEntry[]> {
    const listed = (await this._listServer(runsDir)) ?? (await this._listContents(runsDir, options.recheckEnded ?? true));
    const wanted = listed.filter(run => options.only === undefined || run.id === options.only);
    await Promise.all(wanted.map(run => this._lock(PathExt.join(runsDir, run.id), () => this._update(runsDir, run))));
    return wanted
      .map(run => this._cache.get(PathExt.join(runsDir, run.id))!.entry)
      .sort((a, b) => (b.view?.createdAt ?? 0) - (a.view?.createdAt ?? 0) || (a.id < b.id ? 1 : -1));
  }

  private async _listServer(runsDir: string): Promise<IListed[] | null> {
    const url = URLExt.join(this._settings.baseUrl, 'autoresearch/api/runs') + URLExt.objectToQueryString({ dir: runsDir });
    const response = await ServerConnection.makeRequest(url, {}, this._settings);
    if (response.status === 404) {
      this._server = false;
      return null;
    }
    if (!response.ok) {
      throw await ServerConnection.ResponseError.create(response);
    }
    this._server = true;
    const data = (await response.json()) as { runs: { id: string; journal: IStat | null; notebook: string | null }[] };
    return data.runs.map(run => ({ id: run.id, journal: run.journal, notebook: run.notebook }));
  }

  private async _listContents(runsDir: string, recheckEnded: boolean): Promise<IListed[]> {
    let dir: Contents.IModel;
    try {
      dir = await this._contents.get(runsDir, { content: true, type: 'directory' });
    } catch (reason) {
      if (isNotFound(reason)) {
        return [];
      }
      throw reason;
    }
    const folders = (dir.content as Contents.IModel[]).filter(item => item.type === 'directory');
    return Promise.all(
      folders.map(async (folder): Promise<IListed> => {
        const cached = this._cache.get(folder.path);
        if (cached && cached.ended && !recheckEnded) {
          return { id: folder.name, journal: cached.stat, notebook: null };
        }
        try {
          const model = await this._contents.get(PathExt.join(folder.path, 'journal.jsonl'), { content: false });
          return { id: folder.name, journal: { mtime: Date.parse(model.last_modified) / 1000, size: model.size ?? null }, notebook: null };
        } catch (reason) {
          return { id: folder.name, journal: null, notebook: null };
        }
      })
    );
  }

  /** Bring one run's cache up to date with its files. */
  private async _update(runsDir: string, listed: IListed): Promise<void> {
    const path = PathExt.join(runsDir, listed.id);
    let cache = this._cache.get(path);
    if (!cache) {
      cache = new RunCache(path, listed.id);
      this._cache.set(path, cache);
    }
    const entry = cache.entry;
    entry.notebook = listed.notebook;
    const changed = !sameStat(cache.stat, listed.journal);
    if (!changed && entry.view && !entry.view.live) {
      return; // nothing new, and nothing that time alone changes
    }
    try {
      if (cache.info === null) {
        cache.info = parseRunInfo(await this._readText(runsDir, listed.id, 'run.json'), `${listed.id}/run.json`);
      }
      if (changed) {
        await this._readJournal(runsDir, listed.id, cache, listed.journal);
      }
      cache.stat = listed.journal;
      entry.view = runView({
        id: listed.id,
        info: cache.info,
        replay: cache.replay.result(),
        modified: listed.journal?.mtime ?? null
      });
      entry.error = null;
    } catch (reason) {
      entry.error = reason instanceof Error ? reason.message : String(reason);
      cache.stat = null; // read it all again next time
      cache.offset = 0;
      cache.replay = new JournalReplay();
    }
  }

  private async _readJournal(runsDir: string, id: string, cache: RunCache, stat: IStat | null): Promise<void> {
    if (stat === null) {
      return; // no journal yet: a run folder being made
    }
    if (!this._server) {
      cache.replay = new JournalReplay(`${id}/journal.jsonl`).feed(await this._readText(runsDir, id, 'journal.jsonl'));
      return;
    }
    if (stat.size !== null && stat.size < cache.offset) {
      cache.replay = new JournalReplay(`${id}/journal.jsonl`); // replaced by a shorter file: start again
      cache.offset = 0;
    }
    if (cache.offset === 0) {
      cache.replay = new JournalReplay(`${id}/journal.jsonl`);
    }
    const response = await this._file(runsDir, id, 'journal.jsonl', cache.offset);
    const text = await response.text();
    cache.replay.feed(text);
    cache.offset = Number(response.headers.get('X-Autoresearch-End') ?? cache.offset);
  }

  private async _readText(runsDir: string, id: string, name: string): Promise<string> {
    if (this._server) {
      return (await this._file(runsDir, id, name, 0)).text();
    }
    const model = await this._contents.get(PathExt.join(runsDir, id, name), { content: true, format: 'text', type: 'file' });
    return model.content as string;
  }

  private async _file(runsDir: string, run: string, name: string, offset: number): Promise<Response> {
    const query = URLExt.objectToQueryString({ dir: runsDir, run, name, offset: String(offset) });
    const url = URLExt.join(this._settings.baseUrl, 'autoresearch/api/runs/file') + query;
    const response = await ServerConnection.makeRequest(url, {}, this._settings);
    if (!response.ok) {
      throw await ServerConnection.ResponseError.create(response);
    }
    return response;
  }

  /** Run `task` after any earlier task on the same run: one replay is never fed twice at once. */
  private _lock(key: string, task: () => Promise<void>): Promise<void> {
    const previous = this._locks.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    this._locks.set(key, next);
    return next.finally(() => {
      if (this._locks.get(key) === next) {
        this._locks.delete(key);
      }
    });
  }

  private _contents: Contents.IManager;
  private _settings: ServerConnection.ISettings;
  private _server = true;
  private _cache = new Map<string, RunCache>();
  private _locks = new Map<string, Promise<void>>();
}

/** The runs directory for a notebook (or a folder, given with a trailing "/"). */
export function runsDirFor(path: string, runsDir: string): string {
  const folder = path.endsWith('/') || path === '' ? path : PathExt.dirname(path);
  return PathExt.join(folder, runsDir).replace(/^\/+/, '');
}

function sameStat(a: IStat | null, b: IStat | null): boolean {
  return a !== null && b !== null && a.mtime === b.mtime && a.size === b.size;
}

function isNotFound(reason: unknown): boolean {
  return reason instanceof ServerConnection.ResponseError && reason.response.status === 404;
}
