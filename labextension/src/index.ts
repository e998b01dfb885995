import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { addCommands, CommandIDs } from './commands';
import { fetchDefaults } from './defaults';
import { ICellSettings, listenForInserts, NotebookFinder } from './notebooks';
import { RunReader, runsDirFor } from './runs';
import { RunView } from './runview';
import { RunsPanel } from './sidebar';

const PLUGIN_ID = 'autoresearch-jupyter:plugin';

/** The settings (schema/plugin.json); `steps` and `runsDir` default to the server's (RunSettings). */
interface ISettings extends ICellSettings {
  runsDir?: string;
  refreshInterval: number;
}

/** Used without a settings registry; the run defaults come from the server (see defaults.ts). */
const DEFAULTS: ISettings = {
  metric: 'val_acc',
  direction: 'maximize',
  extraArgs: '',
  refreshInterval: 2.5
};

function activate(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  registry: ISettingRegistry | null,
  docManager: IDocumentManager | null,
  labShell: ILabShell | null,
  restorer: ILayoutRestorer | null,
  palette: ICommandPalette | null,
  browser: IDefaultFileBrowser | null
): void {
  const settings: ISettings = { ...DEFAULTS };
  let composite: Partial<ISettings> = {};
  let server: Partial<ISettings> = {};
  const { contents, serverSettings } = app.serviceManager;
  const reader = new RunReader(serverSettings);
  const finder = new NotebookFinder({ app, tracker, docManager, labShell, contents });
  const interval = () => settings.refreshInterval;
  const panel = new RunsPanel({
    reader,
    interval,
    open: path => {
      app.commands
        .execute(CommandIDs.openRun, { path })
        .catch(reason => console.error('autoresearch: opening the run failed', reason));
    }
  });
  const runViews = new WidgetTracker<MainAreaWidget<RunView>>({ namespace: 'autoresearch-run' });
  addCommands({ app, reader, finder, panel, runViews, interval, cellSettings: () => settings, dockMain: labShell !== null });
  app.shell.add(panel, 'left', { rank: 600 });

  // the runs directory next to the current notebook, else in the file browser's folder
  const follow = () => {
    if (settings.runsDir === undefined) {
      return; // the server's default is not known yet
    }
    const notebook = tracker?.currentWidget?.context.path;
    panel.runsDir = runsDirFor(notebook ?? `${browser?.model.path ?? ''}/`, settings.runsDir);
  };
  // the user's settings win over the server's defaults, which win over DEFAULTS
  const update = () => {
    for (const key of Object.keys(settings) as (keyof ISettings)[]) {
      delete settings[key];
    }
    Object.assign(settings, DEFAULTS, server, composite);
    follow();
  };
  fetchDefaults(serverSettings)
    .then(defaults => {
      // without the server extension, the magics' runs folder name (the Contents API fallback)
      server = defaults ?? { runsDir: '.autoresearch' };
      update();
    })
    .catch(reason => console.error('autoresearch: loading the run defaults failed', reason));
  tracker?.currentChanged.connect(follow);
  browser?.model.pathChanged.connect(follow);
  NotebookActions.executionScheduled.connect((_, { cell }) => {
    if (cell.model.sharedModel.getSource().includes('autoresearch')) {
      panel.refreshSoon();
    }
  });
  listenForInserts(app, finder);

  if (restorer) {
    restorer.add(panel, 'autoresearch-runs');
    restorer
      .restore(runViews, {
        command: CommandIDs.openRun,
        args: widget => ({ path: widget.content.path }),
        name: widget => widget.content.path
      })
      .catch(reason => console.error('autoresearch: restoring the run views failed', reason));
  }
  if (palette) {
    for (const command of [CommandIDs.showRuns, CommandIDs.runCell, CommandIDs.replaceCell, CommandIDs.insertBelow]) {
      palette.addItem({ command, category: 'AutoResearch' });
    }
  }
  if (registry) {
    registry
      .load(PLUGIN_ID)
      .then(loaded => {
        const read = () => {
          composite = loaded.composite as Partial<ISettings>;
          update();
        };
        read();
        loaded.changed.connect(read);
      })
      .catch(reason => console.error('autoresearch: loading the settings failed', reason));
  }
  follow();
}

/** AutoResearch in JupyterLab and Notebook 7: a runs sidebar, a run view and cell actions. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A runs sidebar, a run view and cell actions for %%autoresearch searches.',
  autoStart: true,
  requires: [],
  optional: [INotebookTracker, ISettingRegistry, IDocumentManager, ILabShell, ILayoutRestorer, ICommandPalette, IDefaultFileBrowser],
  activate
};

export default plugin;
