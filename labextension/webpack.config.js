// Extra bundler config, merged by @jupyter/builder: the tree view is
// the shared module in autoresearch_jupyter/report/static/ (the notebook widget loads the same files),
// bundled from there so the tree view exists once.
const path = require('path');

const shared = path.resolve(__dirname, '..', 'autoresearch_jupyter', 'report', 'static');

module.exports = {
  resolve: {
    alias: {
      '@autoresearch/treeview$': path.join(shared, 'treeview.js')
    }
  }
};
