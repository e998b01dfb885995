// The anywidget adapter: feeds the model's traits into a tree-view store, renders the shared view.
// widget.py (bundle_esm) appends this file to treeview.js and drops the import line below, because
// anywidget loads _esm from a blob URL where relative imports cannot resolve. Keep it on one line.
import { createStore, mountTreeView } from "./treeview.js";

const connections = new Map(); // model _uid -> {store, invoke, dispose}
let requestCount = 0;

// One store per model (initialize runs once per model, render once per view): updates that
// arrive while no view is shown are kept, and every view of the model shows the same state.
function connect(model) {
  const store = createStore();
  const pending = new Map(); // request id -> {resolve, reject}
  const expired = new Set();
  let resyncing = false;

  function invoke(type, payload = {}, timeoutMs = 600000) {
    const id = `${Date.now().toString(36)}-${++requestCount}`;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      AbortSignal.timeout(timeoutMs).addEventListener("abort", () => {
        if (!pending.delete(id)) return;
        expired.add(id);
        reject(new Error(`no reply from the kernel after ${timeoutMs / 1000} s`));
      });
      model.send({ type, id, ...payload });
    });
  }

  function onMessage(msg) {
    if (!msg || msg.id === undefined) return;
    const request = pending.get(msg.id);
    if (!request) {
      console.assert(expired.delete(msg.id), "autoresearch: reply to an unknown request", msg.id);
      return;
    }
    pending.delete(msg.id);
    if (msg.error) request.reject(new Error(msg.error));
    else request.resolve(msg);
  }

  // A gap in the update sequence (this page attached late): ask for a snapshot. While a blocking
  // search keeps the kernel busy the request waits; the snapshot at the end of the run fills in.
  function onUpdates() {
    if (!store.applyUpdates(model.get("_updates")) || resyncing) return;
    resyncing = true;
    invoke("resync")
      .catch((err) => console.error("autoresearch: resync failed", err))
      .finally(() => {
        resyncing = false;
      });
  }
  const onMeta = () => store.setMeta(model.get("_meta"));
  const onNodes = () => store.applySnapshot(model.get("_nodes"));
  const onLive = () => store.setLive(model.get("_live"));

  onMeta();
  onNodes();
  onUpdates();
  onLive();
  model.on("change:_meta", onMeta);
  model.on("change:_live", onLive);
  model.on("change:_nodes", onNodes);
  model.on("change:_updates", onUpdates);
  model.on("msg:custom", onMessage);
  const dispose = () => {
    model.off("change:_meta", onMeta);
    model.off("change:_live", onLive);
    model.off("change:_nodes", onNodes);
    model.off("change:_updates", onUpdates);
    model.off("msg:custom", onMessage);
  };
  return { store, invoke, dispose };
}

function initialize({ model }) {
  const uid = model.get("_uid");
  const connection = connect(model);
  connections.set(uid, connection);
  return () => {
    connections.delete(uid);
    connection.dispose();
  };
}

function render({ model, el }) {
  let connection = connections.get(model.get("_uid"));
  let own = null;
  if (!connection) connection = own = connect(model); // no initialize (older anywidget)
  const actions = {
    exportNode: (node) => connection.invoke("export", { node }),
    stop: () => connection.invoke("stop", {}, 30000),
  };
  const cleanup = mountTreeView(el, connection.store, actions);
  return () => {
    cleanup();
    if (own) own.dispose();
  };
}

export default { initialize, render };
