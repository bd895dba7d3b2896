"""The atlas's small script (run by plotly's ``post_script`` after the plot is made): a search box, and
on a click (or a search) the model's exact k nearest neighbours in the full map space.

It reads everything from the figure itself (``layout.meta.atlas``: the K × k neighbour table, KL, SE
and the paired-test flags, as plotly's base64 typed arrays), so the file needs no network. Plotly does
the drawing: the script only restyles three overlay traces and the models trace's ``selectedpoints``.
After a selection the plot element carries ``atlasSelection`` (``{model, index, neighbours, tied}``),
which the browser tests read.
"""

from __future__ import annotations

__all__ = ["ATLAS_SCRIPT"]

ATLAS_SCRIPT = r"""
(function () {
  var gd = document.getElementById('{plot_id}');
  if (!gd || !gd.layout || !gd.layout.meta || !gd.layout.meta.atlas) { return; }
  var A = gd.layout.meta.atlas;
  var TYPES = {i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array, i4: Int32Array,
               u4: Uint32Array, f4: Float32Array, f8: Float64Array};
  function decode(spec) {
    if (spec === null || spec === undefined) { return null; }
    if (ArrayBuffer.isView(spec) || Array.isArray(spec)) { return spec; }
    var bin = atob(spec.bdata), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new TYPES[spec.dtype](bytes.buffer);
  }
  function traceIndex(uid) {
    for (var i = 0; i < gd.data.length; i++) { if (gd.data[i].uid === uid) { return i; } }
    return -1;
  }
  var k = A.k, nb = decode(A.neighbours), kl = decode(A.kl), se = decode(A.se), tied = decode(A.tied);
  gd.layout.meta = {atlas: {k: k}};   // read once: later restyles need not carry the tables along
  var main = traceIndex('models'), tSel = traceIndex('selected'), tNear = traceIndex('near'),
      tTied = traceIndex('tied');
  var names = gd.data[main].text, hover = gd.data[main].hovertext;
  var K = names.length;
  function fmt(v) { return Number(v).toPrecision(3); }

  var bar = document.createElement('div');
  bar.className = 'atlas-bar';
  bar.style.cssText = 'font:14px sans-serif;margin:4px 8px;display:flex;gap:8px;align-items:center;flex-wrap:wrap';
  var input = document.createElement('input');
  input.type = 'search';
  input.id = '{plot_id}-search';
  input.placeholder = 'find a model (' + K + ')';
  input.setAttribute('aria-label', 'find a model by name');
  input.style.cssText = 'width:24em;padding:2px 4px';
  var list = document.createElement('datalist');
  list.id = '{plot_id}-names';
  input.setAttribute('list', list.id);
  var clear = document.createElement('button');
  clear.textContent = 'clear';
  var status = document.createElement('span');
  status.className = 'atlas-status';
  status.textContent = 'click a model (or find one) to see its ' + k + ' nearest models on the full map';
  bar.appendChild(input); bar.appendChild(list); bar.appendChild(clear); bar.appendChild(status);
  gd.parentNode.insertBefore(bar, gd);
  var panel = document.createElement('div');
  panel.className = 'atlas-neighbours';
  panel.style.cssText = 'font:13px sans-serif;margin:4px 8px;max-height:18em;overflow:auto';
  gd.parentNode.insertBefore(panel, gd.nextSibling);

  var filled = false;
  input.addEventListener('focus', function () {   // 20,000 options only when asked for
    if (filled) { return; }
    filled = true;
    var frag = document.createDocumentFragment();
    for (var i = 0; i < K; i++) { var o = document.createElement('option'); o.value = names[i]; frag.appendChild(o); }
    list.appendChild(frag);
  });

  // one restyle (one recalculation) for the three overlays and the models' selection; undefined skips a trace
  function restyle(overlays, selected) {
    var update = {selectedpoints: [undefined, undefined, undefined, selected]};
    Object.keys(overlays).forEach(function (key) { update[key] = overlays[key].concat([undefined]); });
    return Plotly.restyle(gd, update, [tSel, tNear, tTied, main]);
  }
  function cell(row, text, tag) {
    var c = document.createElement(tag || 'td'); c.textContent = text; row.appendChild(c); return c;
  }
  var x = decode(gd.data[main].x), y = decode(gd.data[main].y);
  function select(i) {
    var near = {x: [], y: [], text: [], hovertext: [], customdata: []};
    var same = {x: [], y: [], text: [], hovertext: [], customdata: []};
    var ids = [], flags = [];
    var table = document.createElement('table');
    var head = document.createElement('tr');
    ['rank', 'model', 'KL (' + A.unit + ')', 'SE', 'vs the nearest'].forEach(function (h) { cell(head, h, 'th'); });
    table.appendChild(head);
    for (var r = 0; r < k; r++) {
      var j = nb[i * k + r], t = !!tied[i * k + r];
      var dest = t ? same : near;
      var line = 'rank ' + (r + 1) + ' from ' + names[i] + ': KL ' + fmt(kl[i * k + r]) + ' ± ' + fmt(se[i * k + r]) +
                 ' ' + A.unit + (t ? ' (not distinguishable from the nearest)' : '');
      dest.x.push(x[j]); dest.y.push(y[j]); dest.text.push(names[j]); dest.customdata.push(j);
      dest.hovertext.push(hover[j] + '<br><i>' + line + '</i>');
      ids.push(names[j]); flags.push(t);
      var row = document.createElement('tr');
      cell(row, r + 1); cell(row, names[j]); cell(row, fmt(kl[i * k + r])); cell(row, fmt(se[i * k + r]));
      cell(row, r === 0 ? 'nearest' : (t ? 'not distinguishable' : 'farther (p < ' + A.level + ')'));
      if (t) { row.style.color = '#888'; }
      table.appendChild(row);
    }
    restyle({
      x: [[x[i]], near.x, same.x], y: [[y[i]], near.y, same.y], text: [[names[i]], near.text, same.text],
      hovertext: [[hover[i]], near.hovertext, same.hovertext], customdata: [[i], near.customdata, same.customdata]
    }, [i].concat(near.customdata, same.customdata));
    panel.textContent = '';
    cell(panel, 'The ' + k + ' nearest models to ' + names[i] + ' on the full map (exact k-NN, KL ± SE over ' +
         A.n_texts + ' texts; grey: a paired test at level ' + A.level + ' cannot tell it from the nearest)', 'p');
    panel.appendChild(table);
    status.textContent = 'selected ' + names[i];
    gd.atlasSelection = {model: names[i], index: i, neighbours: ids, tied: flags};
  }
  function reset() {
    restyle({x: [[], [], []], y: [[], [], []], text: [[], [], []], hovertext: [[], [], []],
             customdata: [[], [], []]}, null);
    panel.textContent = '';
    status.textContent = 'click a model (or find one) to see its ' + k + ' nearest models on the full map';
    gd.atlasSelection = null;
  }
  function find(query) {
    var q = query.trim().toLowerCase();
    if (!q) { return -1; }
    for (var i = 0; i < K; i++) { if (String(names[i]).toLowerCase() === q) { return i; } }
    for (var j = 0; j < K; j++) { if (String(names[j]).toLowerCase().indexOf(q) >= 0) { return j; } }
    return -1;
  }
  input.addEventListener('change', function () {
    var i = find(input.value);
    if (i >= 0) { select(i); } else if (input.value.trim()) { status.textContent = 'no model matches ' + input.value; }
  });
  clear.addEventListener('click', function () { input.value = ''; reset(); });
  gd.on('plotly_click', function (ev) {
    if (!ev || !ev.points || !ev.points.length) { return; }
    var p = ev.points[0], uid = p.data.uid;
    if (uid === 'models') { select(p.pointIndex); }
    else if (uid === 'selected' || uid === 'near' || uid === 'tied') { select(p.customdata); }
  });
  gd.atlasSelect = select;
  gd.atlasReset = reset;
})();
"""
