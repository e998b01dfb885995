// A node's code as a notebook cell. A script built from a notebook starts with the frozen setup
// block (autoresearch_jupyter/notebook/code.py, split_script), which a cell must not repeat.

const SETUP_BEGIN = '# autoresearch: freeze  (notebook setup: %%autoresearch_setup cells and --use variables)';
const SETUP_END = '# autoresearch: end  (notebook setup)';

/** The training-cell part of a node script: the script without its notebook setup block. */
export function cellCode(code: string): string {
  const lines = (code || '').split(/(?<=\n)/);
  if (!lines.length || lines[0].replace(/[\r\n]+$/, '') !== SETUP_BEGIN) {
    return code || '';
  }
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].replace(/[\r\n]+$/, '') === SETUP_END) {
      let rest = lines.slice(i + 1);
      if (rest.length && !rest[0].trim()) {
        rest = rest.slice(1);
      }
      return rest.join('');
    }
  }
  return code;
}

/** Options of `nodeCell`. */
export interface INodeCellOptions {
  code: string;
  runId?: string;
  nodeId?: number | null;
  metricName?: string | null;
  metric?: number | null;
}

/**
 * A node's code as a notebook cell: one provenance comment line, then the cell part, without a
 * trailing newline (cells do not end in one).
 */
export function nodeCell({ code, runId = '', nodeId = null, metricName = null, metric = null }: INodeCellOptions): string {
  let body = cellCode(code);
  if (body.startsWith('#!')) {
    body = body.slice(body.indexOf('\n') + 1 || body.length);
  }
  const what = [runId ? `run ${runId}` : '', nodeId !== null && nodeId !== undefined ? `node ${nodeId}` : '']
    .filter(Boolean)
    .join(', ');
  const score = metricName && metric !== null && metric !== undefined ? ` (${metricName} ${Number(metric.toPrecision(6))})` : '';
  return `# autoresearch ${what}${score}\n${body.replace(/\n+$/, '')}`;
}
