import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { PathExt } from '@jupyterlab/coreutils';
import { nodeCount } from '@autoresearch/treeview';

import { autoresearchIcon } from './icon';
import { IRunEntry, RunReader } from './runs';

const PANEL_CLASS = 'jp-AutoResearch-runs';
const ITEM_CLASS = 'jp-AutoResearch-run';
const IDLE_FACTOR = 2; // with no run active, only look for new runs, this many times less often
const FAST_FOR_MS = 60_000; // after a cell that may start a run, poll at the live rate this long

/** Options of the runs panel. */
export interface IRunsPanelOptions {
  reader: RunReader;
  /** Open a run's view; `path` is the run folder's API path. */
  open: (path: string) => void;
  /** Seconds between refreshes while a run is active. */
  interval: () => number;
}

/**
 * The runs sidebar: the runs in the runs directory next to the current notebook, with state,
 * nodes, best metric and improvement. While it is visible it refreshes every `interval` seconds
 * when a run is active, and looks for new runs less often otherwise.
 */
export class RunsPanel extends Widget {
  constructor(options: IRunsPanelOptions) {
    super();
    this._options = options;
    this.id = 'autoresearch-runs';
    this.addClass(PANEL_CLASS);
    this.title.icon = autoresearchIcon;
    this.title.caption = 'AutoResearch runs';
    const head = el('div', 'jp-AutoResearch-runsHead');
    const title = el('span', 'jp-AutoResearch-runsTitle', 'AutoResearch runs');
    const refresh = el('button', 'jp-Button jp-mod-minimal jp-AutoResearch-refresh', '⟳');
    refresh.title = 'Refresh the runs';
    refresh.addEventListener('click', () => this.refresh());
    head.append(title, refresh);
    this._folder = el('div', 'jp-AutoResearch-runsFolder');
    this._list = el('ul', 'jp-AutoResearch-runList');
    this._list.setAttribute('role', 'list');
    this._message = el('div', 'jp-AutoResearch-runsMessage');
    this.node.append(head, this._folder, this._list, this._message);
    this._list.addEventListener('click', event => this._onOpen(event));
    this._list.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this._onOpen(event);
      }
    });
  }

  /** The runs directory shown (an API path); setting it refreshes the panel. */
  get runsDir(): string {
    return this._runsDir;
  }
  set runsDir(value: string) {
    if (value === this._runsDir) {
      return;
    }
    this._runsDir = value;
    this._entries = [];
    this.refresh();
  }

  /** Read the runs again now (when visible), then keep polling as needed. */
  refresh(): void {
    if (this.isVisible) {
      this._poll();
    }
  }

  /** Refresh soon: a cell just ran, and may have started a search; keep up with it for a while. */
  refreshSoon(): void {
    this._fastUntil = Date.now() + FAST_FOR_MS;
    window.setTimeout(() => this.refresh(), 1000);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._poll();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearTimeout(this._timer);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _poll(): void {
    window.clearTimeout(this._timer);
    const dir = this._runsDir;
    const started = Date.now();
    this._options.reader
      .list(dir)
      .then(entries => {
        if (dir === this._runsDir) {
          this._entries = entries;
          this._error = '';
        }
      })
      .catch(reason => {
        this._error = `Cannot read ${dir}: ${reason instanceof Error ? reason.message : reason}`;
        console.error('autoresearch: reading the runs failed', reason);
      })
      .then(() => {
        this._render();
        this._schedule(Date.now() - started);
      })
      .catch(reason => console.error('autoresearch: showing the runs failed', reason));
  }

  private _schedule(tookMs: number): void {
    if (!this.isVisible || this.isDisposed) {
      return;
    }
    const live = this._entries.some(entry => entry.view?.live) || Date.now() < this._fastUntil;
    const seconds = this._options.interval() * (live ? 1 : IDLE_FACTOR);
    const delay = Math.max(seconds * 1000, 2 * tookMs); // a slow server is not asked faster than it answers
    this._timer = window.setTimeout(() => this._poll(), delay);
  }

  private _render(): void {
    this._folder.textContent = this._runsDir || '(root)';
    this._folder.title = `Runs directory: ${this._runsDir}`;
    this._list.replaceChildren(...this._entries.map(entry => runItem(entry)));
    if (this._error) {
      this._message.textContent = this._error;
    } else if (!this._entries.length) {
      this._message.textContent =
        'No runs here yet. Mark a training cell with %%autoresearch, or use "AutoResearch this cell" in its toolbar.';
    } else {
      this._message.textContent = '';
    }
    this._message.classList.toggle('jp-AutoResearch-error', Boolean(this._error));
  }

  private _onOpen(event: Event): void {
    const item = (event.target as HTMLElement).closest<HTMLElement>(`.${ITEM_CLASS}`);
    if (item?.dataset.path) {
      this._options.open(item.dataset.path);
    }
  }

  private _options: IRunsPanelOptions;
  private _runsDir = '';
  private _entries: IRunEntry[] = [];
  private _error = '';
  private _timer = 0;
  private _fastUntil = 0;
  private _folder: HTMLElement;
  private _list: HTMLElement;
  private _message: HTMLElement;
}

function el(tag: string, className: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

const fmt = (value: number | null): string => (value === null ? '-' : String(Number(value.toPrecision(6))));
const signed = (value: number, digits = 6): string => (value >= 0 ? '+' : '') + String(Number(value.toPrecision(digits)));

/** One run in the list: name and state, then nodes, best metric and improvement. */
function runItem(entry: IRunEntry): HTMLElement {
  const item = el('li', ITEM_CLASS);
  item.dataset.path = entry.path;
  item.dataset.runId = entry.id;
  item.tabIndex = 0;
  item.setAttribute('role', 'listitem');
  const view = entry.view;
  const state = entry.error ? 'corrupt' : view?.state ?? 'waiting';
  item.dataset.state = state;
  const line1 = el('div', 'jp-AutoResearch-runLine');
  line1.append(
    el('span', 'jp-AutoResearch-runName', view?.name || entry.id),
    el('span', `ar-chip ar-state ar-state-${state} jp-AutoResearch-runState`, state)
  );
  const line2 = el('div', 'jp-AutoResearch-runFacts');
  if (entry.error) {
    line2.textContent = entry.error;
    line2.classList.add('jp-AutoResearch-error');
  } else if (view) {
    const m = view.meta;
    const facts = [nodeCount(m)];
    if (m.best_metric !== null) {
      facts.push(`best ${m.metric} ${m.direction === 'minimize' ? '↓' : '↑'} ${fmt(m.best_metric)}`);
    } else {
      facts.push(`${m.metric}: no result yet`);
    }
    if (m.improvement !== null) {
      const rel = m.improvement_rel === null ? '' : ` (${signed(m.improvement_rel * 100, 3)}%)`;
      facts.push(`${signed(m.improvement)}${rel} vs baseline`);
    }
    line2.textContent = facts.join(' · ');
  }
  item.append(line1, line2);
  if (view?.source) {
    // where the run came from: the notebook (or script) path, relative to the server root
    const from = el('div', 'jp-AutoResearch-runSource', `from ${PathExt.basename(view.source)}`);
    from.title = view.source;
    item.append(from);
  }
  const when = view?.createdAt ? new Date(view.createdAt * 1000).toLocaleString() : '';
  item.title = [`run ${entry.id}`, view?.name ? `name ${view.name}` : '', when, view?.source ? `from ${view.source}` : '',
    view?.meta.reason ?? '', entry.path].filter(Boolean).join('\n');
  return item;
}
