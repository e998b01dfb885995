import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="6" cy="4.5" r="2.5"/>
    <circle cx="6" cy="19.5" r="2.5"/>
    <circle cx="18" cy="9" r="2.5"/>
    <rect x="5" y="6" width="2" height="12"/>
    <path d="M7 15.2c4.6 0 9.5-1.2 10-4.6l2 .3c-.7 4.9-6.6 6.3-12 6.3z"/>
  </g>
</svg>`;

/** The search-tree icon of the runs sidebar and the cell toolbar button. */
export const autoresearchIcon = new LabIcon({ name: 'autoresearch-jupyter:tree', svgstr });
