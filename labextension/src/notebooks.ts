import { ILabShell, JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';

import { nodeCell } from './cells';
import { IRunEntry } from './runs';

/** How a node's code goes into a notebook. */
export type PutMode = 'replace' | 'insert';

/** The detail of the tree view's "autoresearch:insert-node" event (see treeview.js). */
export interface IInsertNodeDetail {
  nodeId: number;
  code: string | null;
  runId?: string;
  metricName?: string | null;
  metric?: number | null;
  /** "replace" replaces the cell instead of inserting below it; "insert" when absent. */
  mode?: PutMode;
}

/** The settings of the "AutoResearch this cell" command (schema/plugin.json). */
export interface ICellSettings {
  metric: string;
  direction: 'maximize' | 'minimize';
  /** Unset: the kernel's own default (`%config AutoResearch.steps`, else the server's RunSettings). */
  steps?: number;
  extraArgs: string;
}

/** What the cell actions need from the application; the optional tokens may be null. */
export interface INotebookAccess {
  app: JupyterFrontEnd;
  tracker: INotebookTracker | null;
  docManager: IDocumentManager | null;
  labShell: ILabShell | null;
  contents: Contents.IManager;
}

const MAGIC = /^\s*%%autoresearch\b/;

/** The `%%autoresearch` line that "AutoResearch this cell" adds. */
export function magicLine(settings: ICellSettings): string {
  const parts = ['%%autoresearch', '--metric', settings.metric, `--${settings.direction}`];
  if (settings.steps !== undefined) {
    parts.push('--steps', String(settings.steps));
  }
  if (settings.extraArgs.trim()) {
    parts.push(settings.extraArgs.trim());
  }
  return parts.join(' ');
}

/**
 * Mark the active code cell with `%%autoresearch` (unless it already is) and run it; the magics
 * are loaded in the kernel first, silently.
 */
export async function autoresearchCell(panel: NotebookPanel, settings: ICellSettings): Promise<void> {
  const cell = panel.content.activeCell;
  if (!cell || cell.model.type !== 'code') {
    throw new Error('select a code cell first');
  }
  const source = cell.model.sharedModel.getSource();
  if (!MAGIC.test(source)) {
    cell.model.sharedModel.setSource(`${magicLine(settings)}\n${source}`);
  }
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session?.kernel;
  if (kernel) {
    // sent before the cell on the same channel, so it runs first
    kernel
      .requestExecute({ code: '%load_ext autoresearch_jupyter', silent: true, store_history: false })
      .done.catch(reason => console.error('autoresearch: loading the magics failed', reason));
  }
  await NotebookActions.run(panel.content, panel.sessionContext);
}

/**
 * Put `text` into `panel` at cell `index` (the active cell when absent): replace that cell's
 * code (its outputs are cleared) or insert a new code cell below it. Returns what was done.
 */
export function putCode(panel: NotebookPanel, text: string, mode: PutMode, index?: number): string {
  const notebook = panel.content;
  const model = notebook.model;
  if (!model) {
    throw new Error(`${panel.context.path} is not loaded yet`);
  }
  const at = index ?? Math.max(notebook.activeCellIndex, 0);
  const shared = model.sharedModel;
  const name = PathExt.basename(panel.context.path);
  if (mode === 'replace' && at < shared.cells.length) {
    const cell = shared.cells[at];
    shared.transact(() => {
      if (cell.cell_type === 'code') {
        cell.setSource(text);
        const code = cell as typeof cell & { setOutputs(outputs: []): void; execution_count: number | null };
        code.setOutputs([]);
        code.execution_count = null;
      } else {
        shared.deleteCell(at);
        shared.insertCell(at, { cell_type: 'code', source: text });
      }
    });
    notebook.activeCellIndex = at;
    return `replaced cell ${at + 1} of ${name}`;
  }
  const below = Math.min(at + 1, shared.cells.length);
  shared.insertCell(below, { cell_type: 'code', source: text });
  notebook.activeCellIndex = below;
  return `inserted it as cell ${below + 1} of ${name}`;
}

/**
 * Finds the notebook a node goes into: the run's source notebook when it is one (opened if
 * needed, in JupyterLab), else the current notebook.
 */
export class NotebookFinder {
  constructor(access: INotebookAccess) {
    this._access = access;
  }

  get current(): NotebookPanel | null {
    return this._access.tracker?.currentWidget ?? null;
  }

  /** The open notebook whose DOM holds `node` (a widget's output), with the cell index. */
  containing(node: Node): { panel: NotebookPanel; index: number } | null {
    const panel = this._access.tracker?.find(p => p.node.contains(node)) ?? null;
    if (!panel) {
      return null;
    }
    const index = panel.content.widgets.findIndex(cell => cell.node.contains(node));
    return { panel, index: index >= 0 ? index : panel.content.activeCellIndex };
  }

  /** The notebook for a run, or null when there is none to use. */
  async forRun(entry: IRunEntry | null): Promise<NotebookPanel | null> {
    const path = entry ? await this._sourcePath(entry) : null;
    if (path === null) {
      return this.current;
    }
    const open = this._access.tracker?.find(p => p.context.path === path);
    if (open) {
      return open;
    }
    const { docManager, labShell, tracker } = this._access;
    if (docManager && labShell && tracker) {
      // Notebook 7 opens documents in new browser tabs, out of reach: it uses the current one
      const widget = docManager.openOrReveal(path, undefined, undefined, { mode: 'tab-after' });
      const panel = tracker.find(p => p === widget);
      if (panel) {
        await panel.context.ready;
        return panel;
      }
    }
    return this.current;
  }

  /** run.json's `source` as an API path, when it is a notebook that exists under the root. */
  private async _sourcePath(entry: IRunEntry): Promise<string | null> {
    if (entry.notebook) {
      return entry.notebook; // the server extension resolved it
    }
    const source = entry.view?.source?.replace(/\\/g, '/');
    if (!source || !source.endsWith('.ipynb')) {
      return null;
    }
    const open = this._access.tracker?.find(p => source === p.context.path || source.endsWith(`/${p.context.path}`));
    if (open) {
      return open.context.path;
    }
    const root = PageConfig.getOption('serverRoot').replace(/\\/g, '/').replace(/\/+$/, '');
    const candidates: string[] = [];
    if (root && source.startsWith(`${root}/`)) {
      candidates.push(source.slice(root.length + 1));
    } else if (!source.startsWith('/') && !/^[A-Za-z]:/.test(source)) {
      const base = PathExt.dirname(PathExt.dirname(entry.path)); // the folder holding the runs directory
      candidates.push(PathExt.join(base, source), source);
    } else {
      const parts = source.split('/').filter(Boolean);
      for (let i = 0; i < parts.length; i++) {
        candidates.push(parts.slice(i).join('/')); // longest first
      }
    }
    for (const candidate of candidates) {
      try {
        await this._access.contents.get(candidate, { content: false });
        return candidate;
      } catch (reason) {
        // not there: try the next one
      }
    }
    return null;
  }

  private _access: INotebookAccess;
}

/** A node's code as cell text, with a provenance comment. */
export function cellText(entry: IRunEntry | null, nodeId: number, code: string): string {
  const meta = entry?.view?.meta;
  const record = entry?.view?.records.find(r => r.id === nodeId);
  return nodeCell({
    code,
    runId: entry?.view?.id ?? entry?.id ?? '',
    nodeId,
    metricName: meta?.metric ?? null,
    metric: record?.metric ?? null
  });
}

/** Show where a node went, with a button to go there. */
export function notifyPut(app: JupyterFrontEnd, panel: NotebookPanel, nodeId: number, what: string): void {
  Notification.success(`Node ${nodeId}: ${what}`, {
    autoClose: 4000,
    actions: [{ label: 'Show', callback: () => app.shell.activateById(panel.id) }]
  });
}

/**
 * Take the tree view's "autoresearch:insert-node" events (its "Insert as cell" button, in a notebook
 * widget or anywhere else): the node goes below the cell that holds the view, or below the active
 * cell of the current notebook. Returns a function that stops listening.
 */
export function listenForInserts(app: JupyterFrontEnd, finder: NotebookFinder): () => void {
  const onInsert = (event: Event): void => {
    const detail = (event as CustomEvent<IInsertNodeDetail>).detail;
    if (event.defaultPrevented || !detail || typeof detail.nodeId !== 'number' || typeof detail.code !== 'string') {
      return;
    }
    const where = event.target instanceof Node ? finder.containing(event.target) : null;
    const panel = where?.panel ?? finder.current;
    if (!panel) {
      return; // no notebook: the view copies the code instead
    }
    event.preventDefault();
    try {
      // the same cell header as the run view's "Insert as cell" (cellText): run, node and metric
      const text = nodeCell({
        code: detail.code,
        runId: detail.runId ?? '',
        nodeId: detail.nodeId,
        metricName: detail.metricName ?? null,
        metric: detail.metric ?? null
      });
      const mode: PutMode = detail.mode === 'replace' ? 'replace' : 'insert';
      notifyPut(app, panel, detail.nodeId, putCode(panel, text, mode, where?.index));
    } catch (reason) {
      console.error('autoresearch: inserting the node failed', reason);
      Notification.error(`AutoResearch: inserting node ${detail.nodeId} failed: ${reason}`);
    }
  };
  document.addEventListener('autoresearch:insert-node', onInsert);
  return () => document.removeEventListener('autoresearch:insert-node', onInsert);
}
