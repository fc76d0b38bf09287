/** How `dust-serve models` prints ListModels: one table row per model version. Pure. */
import Table from 'cli-table3';
import type { ModelList, ModelVersionInfo } from '@dust-serve/client';

/** FAILED reasons are wrapped to this width so the table stays readable. */
const REASON_WIDTH = 48;

export const MODEL_COLUMNS = [
  'name',
  'version',
  'state',
  'device',
  'embodiments',
  'cameras',
  'image HxW',
  'horizon',
  'default steps A/o',
  'max vision steps',
  'traffic weight',
] as const;

export function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

function stateCell(m: ModelVersionInfo): string {
  if (m.state === 'FAILED' && m.reason) return `FAILED:\n${wrap(m.reason, REASON_WIDTH)}`;
  if (m.lastLoadError) return `${m.state}\nlast reload refused:\n${wrap(m.lastLoadError, REASON_WIDTH)}`;
  return m.state;
}

export function modelRow(m: ModelVersionInfo): string[] {
  return [
    m.name,
    String(m.version),
    stateCell(m),
    m.device,
    m.embodiments.map((e) => `${e.name}:${e.stateDim}/${e.actionDim}`).join('\n'),
    m.cameras.join('\n'),
    m.imageHeight || m.imageWidth ? `${m.imageHeight}x${m.imageWidth}` : '',
    String(m.actionHorizon),
    `${m.defaultActionSteps}/${m.defaultVisionSteps}`,
    String(m.maxVisionSteps),
    String(Number(m.trafficWeight.toFixed(3))),
  ];
}

export function formatModels(list: ModelList): string {
  if (list.models.length === 0) return 'no models loaded\n';
  const table = new Table({ head: [...MODEL_COLUMNS], style: { head: [], border: [] } });
  for (const m of list.models) table.push(modelRow(m));
  return `default model: ${list.defaultModel || '(none)'}\n${table.toString()}\n`;
}
