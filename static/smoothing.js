// The server's smoothing (trackio_flask/series.py `smooth`) on the points a page already holds,
// so a smoothing change shows at once, before the server's answer replaces it.
//
// A series' points sit on rows (its `i`, else its `x`). When nothing was downsampled each point
// is one row and the answer is the server's formula exactly: the mean of the finite values on
// rows [i - half, i + half] (moving average), or TensorBoard's debiased EMA over the finite
// values. A downsampled series (`t` set) keeps one point per bucket; the point then stands for
// every row of its bucket (after the previous point's row, up to its own), which gives the
// same formula on the rows it stands for, close to the server's on the full series.
// No inline scripts and no eval (CSP script-src 'self').
(function () {
  "use strict";

  // Rows each point stands for: [first, last], inclusive.
  function spans(s) {
    var rows = s.i || s.x, n = rows.length, first = new Array(n);
    for (var j = 0; j < n; j++) first[j] = s.t && j > 0 ? Math.min(rows[j], rows[j - 1] + 1) : rows[j];
    return { first: first, last: rows };
  }

  function movingAverage(s, amount) {
    var ys = s.y, n = ys.length, out = new Array(n);
    if (amount <= 1) return ys.slice();
    var span = spans(s), first = span.first, last = span.last;
    var count = last[n - 1] + 1; // the run's rows (a NaN logged last is not known here)
    var half = Math.max(3, Math.min(amount, count)) >> 1;
    // Prefix sums over the points' rows: weight (rows) and weight × value.
    var weights = new Float64Array(n + 1), sums = new Float64Array(n + 1);
    for (var j = 0; j < n; j++) {
      var size = last[j] - first[j] + 1;
      weights[j + 1] = weights[j] + size;
      sums[j + 1] = sums[j] + size * ys[j];
    }
    // Weight and sum of the rows <= row.
    function upTo(row) {
      var lo = 0, hi = n; // first point whose last row is > row
      while (lo < hi) { var mid = (lo + hi) >> 1; if (last[mid] <= row) lo = mid + 1; else hi = mid; }
      var w = weights[lo], total = sums[lo];
      if (lo < n && first[lo] <= row) { var part = row - first[lo] + 1; w += part; total += part * ys[lo]; }
      return [w, total];
    }
    for (var k = 0; k < n; k++) {
      var centre = last[k], a = upTo(centre - half - 1), b = upTo(centre + half);
      out[k] = (b[1] - a[1]) / (b[0] - a[0]);
    }
    return out;
  }

  function ema(s, amount) {
    var ys = s.y, n = ys.length, out = new Array(n);
    var weight = Math.min(amount, 99.9) / 100, span = spans(s), value = 0, rows = 0;
    for (var j = 0; j < n; j++) {
      var size = span.last[j] - span.first[j] + 1, keep = Math.pow(weight, size);
      value = keep * value + (1 - keep) * ys[j];
      rows += size;
      out[j] = value / (1 - Math.pow(weight, rows));
    }
    return out;
  }

  // Smoothed values of series s (columns as on the wire), or null when smoothing is off.
  function smooth(s, method, amount) {
    if (!(amount > 0)) return null;
    if (!s.y.length) return [];
    return method === "ema" ? ema(s, amount) : movingAverage(s, amount);
  }

  window.trackioSmoothing = { smooth: smooth };
})();
