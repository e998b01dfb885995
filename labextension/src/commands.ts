import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, Notification, WidgetTracker } from '@jupyterlab/apputils';
import { CommandToolbarButton } from '@jupyterlab/ui-components';

import { autoresearchIcon } from './icon';
import {
  autoresearchCell,
  cellText,
  ICellSettings,
  NotebookFinder,
  notifyPut,
  PutMode,
  putCode
} from './notebooks';
import { RunReader } from './runs';
import { RunView } from './runview';
import { RunsPanel } from './sidebar';

/** The extension's command ids. */
export namespace CommandIDs {
  export const runCell = 'autoresearch:run-cell';
  export const showRuns = 'autoresearch:show-runs';
  export const openRun = 'autoresearch:open-run';
  export const replaceCell = 'autoresearch:replace-cell';
  export const insertBelow = 'autoresearch:insert-below';
  export const refreshRun = 'autoresearch:refresh-run';
}

/** What the commands work with. */
export interface ICommandContext {
  app: JupyterFrontEnd;
  reader: RunReader;
  finder: NotebookFinder;
  panel: RunsPanel;
  runViews: WidgetTracker<MainAreaWidget<RunView>>;
  cellSettings: () => ICellSettings;
  interval: () => number;
  /** Whether the main area takes several widgets (JupyterLab, not Notebook 7). */
  dockMain: boolean;
}

const failed = (what: string) => (reason: unknown) => {
  console.error(`autoresearch: ${what} failed`, reason);
  Notification.error(`AutoResearch: ${what} failed: ${reason instanceof Error ? reason.message : reason}`);
};

/** Register the commands. */
export function addCommands(ctx: ICommandContext): void {
  const { app, finder, runViews } = ctx;
  const { commands, shell } = app;
  const currentRun = (): RunView | null => runViews.currentWidget?.content ?? null;

  commands.addCommand(CommandIDs.runCell, {
    label: 'AutoResearch this cell',
    caption: 'Add %%autoresearch (metric, direction and steps from the settings) to this cell and run the search',
    icon: autoresearchIcon,
    isEnabled: () => finder.current?.content.activeCell?.model.type === 'code',
    isVisible: () => finder.current?.content.activeCell?.model.type === 'code',
    execute: () => {
      const panel = finder.current;
      if (!panel) {
        return;
      }
      ctx.panel.refreshSoon();
      return autoresearchCell(panel, ctx.cellSettings()).catch(failed('AutoResearch this cell'));
    }
  });

  commands.addCommand(CommandIDs.showRuns, {
    label: 'Show AutoResearch Runs',
    execute: () => shell.activateById(ctx.panel.id)
  });

  commands.addCommand(CommandIDs.openRun, {
    label: args => (args.path ? `Open AutoResearch Run ${args.path}` : 'Open AutoResearch Run'),
    execute: args => {
      const path = String(args.path ?? '');
      if (!path) {
        return;
      }
      const open = runViews.find(w => w.content.path === path);
      if (open) {
        shell.activateById(open.id);
        return open;
      }
      const view = new RunView({ path, reader: ctx.reader, interval: ctx.interval });
      const widget = new MainAreaWidget({ content: view });
      widget.id = `autoresearch-run-${view.runId}`;
      widget.title.label = view.runId;
      widget.title.caption = path;
      widget.title.icon = autoresearchIcon;
      widget.title.closable = true;
      for (const id of [CommandIDs.replaceCell, CommandIDs.insertBelow, CommandIDs.refreshRun]) {
        widget.toolbar.addItem(id, new CommandToolbarButton({ commands, id, label: commands.label(id) }));
      }
      view.node.addEventListener('autoresearch:insert-node', event => onInsertInRunView(event as CustomEvent, view));
      view.selectionChanged.connect(() => {
        commands.notifyCommandChanged(CommandIDs.replaceCell);
        commands.notifyCommandChanged(CommandIDs.insertBelow);
      });
      runViews.add(widget).catch(reason => console.error('autoresearch: tracking the run view failed', reason));
      if (ctx.dockMain) {
        const ref = runViews.size > 1 ? runViews.find(w => w !== widget && w.isAttached)?.id : finder.current?.id;
        shell.add(widget, 'main', ref ? { ref, mode: runViews.size > 1 ? 'tab-after' : 'split-right' } : undefined);
      } else {
        shell.add(widget, 'right', { rank: 900 }); // Notebook 7: the main area holds the notebook
      }
      shell.activateById(widget.id);
      return widget;
    }
  });

  const put = (mode: PutMode) => async (): Promise<void> => {
    const view = currentRun();
    const id = view?.selected ?? null;
    if (!view || id === null) {
      return;
    }
    const code = view.store.code(id);
    if (code === null) {
      throw new Error(`node ${id}'s code is too large for the view: export it with %autoresearch export`);
    }
    const target = await finder.forRun(view.entry);
    if (!target) {
      throw new Error('open the notebook to put the node in first');
    }
    notifyPut(app, target, id, putCode(target, cellText(view.entry, id, code), mode));
  };

  function onInsertInRunView(event: CustomEvent, view: RunView): void {
    const id = event.detail?.nodeId;
    if (typeof id !== 'number' || typeof event.detail.code !== 'string') {
      return; // the view copies the code instead
    }
    event.preventDefault();
    event.stopPropagation();
    const mode: PutMode = event.detail.mode === 'replace' ? 'replace' : 'insert';
    view.store.ui.selected = id;
    put(mode)().catch(failed('putting the node in the notebook'));
  }

  const hasSelection = () => (currentRun()?.selected ?? null) !== null;
  commands.addCommand(CommandIDs.replaceCell, {
    label: 'Replace cell with this node',
    caption: "Replace the notebook's active cell with the selected node's code",
    isEnabled: hasSelection,
    execute: () => put('replace')().catch(failed('Replace cell with this node'))
  });
  commands.addCommand(CommandIDs.insertBelow, {
    label: 'Insert as cell',
    caption: "Insert the selected node's code as a new cell below the notebook's active cell",
    isEnabled: hasSelection,
    execute: () => put('insert')().catch(failed('Insert as cell'))
  });
  commands.addCommand(CommandIDs.refreshRun, {
    label: 'Refresh',
    caption: "Read the run's files again",
    isEnabled: () => currentRun() !== null,
    execute: () => currentRun()?.refresh().catch(failed('refreshing the run'))
  });
}
