import { PathExt } from '@jupyterlab/coreutils';
import { ISignal, Signal } from '@lumino/signaling';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { createStore, ITreeStore, mountTreeView } from '@autoresearch/treeview';

import { IRunEntry, RunReader } from './runs';

const VIEW_CLASS = 'jp-AutoResearch-runView';

/** Options of a run view. */
export interface IRunViewOptions {
  /** The run folder's API path. */
  path: string;
  reader: RunReader;
  /** Seconds between refreshes while the run is active. */
  interval: () => number;
}

/**
 * One run's tree and inspector (the shared tree view of treeview.js), read from the run's
 * files: it needs no kernel. While the run is active and the view is visible it refreshes
 * every `interval` seconds. The best node is selected until the user picks another one.
 */
export class RunView extends Widget {
  constructor(options: IRunViewOptions) {
    super();
    this._options = options;
    this.path = options.path;
    this.addClass(VIEW_CLASS);
    this.store.subscribe(() => this._selectionChanged.emit());
  }

  /** The run folder's API path. */
  readonly path: string;
  /** The tree view's store: records, header and what is selected. */
  readonly store: ITreeStore = createStore();

  /** The run as last read; null before the first read. */
  get entry(): IRunEntry | null {
    return this._entry;
  }

  /** The id of the run folder. */
  get runId(): string {
    return PathExt.basename(this.path);
  }

  /** The selected node, or null. */
  get selected(): number | null {
    const id = this.store.ui.selected;
    return id !== null && this.store.nodes.has(id) ? id : null;
  }

  /** Emitted when the store changes (selection, new records). */
  get selectionChanged(): ISignal<this, void> {
    return this._selectionChanged;
  }

  /** Read the run's files again and show what changed. */
  async refresh(): Promise<void> {
    const entry = await this._options.reader.run(this.path);
    this._entry = entry;
    if (!entry || entry.error || !entry.view) {
      this._showError(entry ? entry.error ?? 'the run has no journal yet' : `no run at ${this.path}`);
      return;
    }
    this._showError('');
    const view = entry.view;
    this.title.label = view.name ?? view.id;
    this.store.setMeta(view.meta);
    this.store.applySnapshot({ seq: this.store.seq + 1, nodes: view.records });
    this.store.setLive(view.liveTails ?? {});
    // the shared renderer keeps the best node selected, as it changes, until a node is picked
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._error = document.createElement('div');
    this._error.className = 'jp-AutoResearch-runError';
    this._error.hidden = true;
    const host = document.createElement('div');
    host.className = 'jp-AutoResearch-tree';
    this.node.replaceChildren(this._error, host);
    this._unmount = mountTreeView(host, this.store, {});
    this._poll();
  }

  protected onBeforeDetach(msg: Message): void {
    window.clearTimeout(this._timer);
    this._unmount?.();
    this._unmount = null;
    super.onBeforeDetach(msg);
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
    this._unmount?.();
    this._unmount = null;
    super.dispose();
  }

  private _poll(): void {
    window.clearTimeout(this._timer);
    const started = Date.now();
    this.refresh()
      .catch(reason => {
        this._showError(`Cannot read the run: ${reason instanceof Error ? reason.message : reason}`);
        console.error('autoresearch: reading the run failed', reason);
      })
      .then(() => {
        if (this._entry?.view?.live && this.isVisible && !this.isDisposed) {
          const delay = Math.max(this._options.interval() * 1000, 4 * (Date.now() - started));
          this._timer = window.setTimeout(() => this._poll(), delay);
        }
      })
      .catch(reason => console.error('autoresearch: polling the run failed', reason));
  }

  private _showError(text: string): void {
    if (this._error) {
      this._error.textContent = text;
      this._error.hidden = !text;
    }
  }

  private _options: IRunViewOptions;
  private _entry: IRunEntry | null = null;
  private _error: HTMLElement | null = null;
  private _timer = 0;
  private _unmount: (() => void) | null = null;
  private _selectionChanged = new Signal<this, void>(this);
}
