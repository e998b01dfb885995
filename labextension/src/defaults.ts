import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The defaults the server's Python serves (RunSettings), so the extension keeps no copy. */
export interface IServerDefaults {
  /** The step budget of a run (`--steps`). */
  steps: number;
  /** The magics' runs directory as the server sees it ($AUTORESEARCH_RUNS_DIR or its default). */
  runsDir: string;
}

/** `GET autoresearch/api/settings`; null when the server extension is not there. */
export async function fetchDefaults(settings: ServerConnection.ISettings): Promise<IServerDefaults | null> {
  const url = URLExt.join(settings.baseUrl, 'autoresearch/api/settings');
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (response.status === 404) {
    return null;
  }
  if (!response.ok) {
    throw await ServerConnection.ResponseError.create(response);
  }
  const data = (await response.json()) as { defaults: { steps: number }; runs_dir: string };
  return { steps: data.defaults.steps, runsDir: data.runs_dir };
}
