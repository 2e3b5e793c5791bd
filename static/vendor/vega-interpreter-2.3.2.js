/* vega-interpreter 2.3.2 from the npm registry (npm pack vega-interpreter@2.3.2), turned from an ES module into a
   classic script so CSP script-src 'self' needs no import map: the vega-util import reads the global vega build
   and the export becomes window.vegaInterpreter. One change for speed, marked "trackio_flask change" below:
   expressions are compiled once into closures (still no eval) instead of walking the AST per call. */
(function () {
const { ascending, isString, DisallowedObjectProperties } = window.vega;

function adjustSpatial (item, encode, swap) {
  let t;
  if (encode.x2) {
    if (encode.x) {
      if (swap && item.x > item.x2) {
        t = item.x;
        item.x = item.x2;
        item.x2 = t;
      }
      item.width = item.x2 - item.x;
    } else {
      item.x = item.x2 - (item.width || 0);
    }
  }
  if (encode.xc) {
    item.x = item.xc - (item.width || 0) / 2;
  }
  if (encode.y2) {
    if (encode.y) {
      if (swap && item.y > item.y2) {
        t = item.y;
        item.y = item.y2;
        item.y2 = t;
      }
      item.height = item.y2 - item.y;
    } else {
      item.y = item.y2 - (item.height || 0);
    }
  }
  if (encode.yc) {
    item.y = item.yc - (item.height || 0) / 2;
  }
}

var Constants = {
  NaN: NaN,
  E: Math.E,
  LN2: Math.LN2,
  LN10: Math.LN10,
  LOG2E: Math.LOG2E,
  LOG10E: Math.LOG10E,
  PI: Math.PI,
  SQRT1_2: Math.SQRT1_2,
  SQRT2: Math.SQRT2,
  MIN_VALUE: Number.MIN_VALUE,
  MAX_VALUE: Number.MAX_VALUE
};

var Ops = {
  '*': (a, b) => a * b,
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '/': (a, b) => a / b,
  '%': (a, b) => a % b,
  '>': (a, b) => a > b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a == b,
  '!=': (a, b) => a != b,
  '===': (a, b) => a === b,
  '!==': (a, b) => a !== b,
  '&': (a, b) => a & b,
  '|': (a, b) => a | b,
  '^': (a, b) => a ^ b,
  '<<': (a, b) => a << b,
  '>>': (a, b) => a >> b,
  '>>>': (a, b) => a >>> b
};

var Unary = {
  '+': a => +a,
  '-': a => -a,
  '~': a => ~a,
  '!': a => !a
};

const slice = Array.prototype.slice;
const apply = (m, args, cast) => {
  const obj = cast ? cast(args[0]) : args[0];
  return obj[m].apply(obj, slice.call(args, 1));
};
const datetime = (yearOrTimestring, m = 0, d = 1, H = 0, M = 0, S = 0, ms = 0) => isString(yearOrTimestring) ? new Date(yearOrTimestring) : new Date(yearOrTimestring, m, d, H, M, S, ms);
var Functions = {
  // math functions
  isNaN: Number.isNaN,
  isFinite: Number.isFinite,
  abs: Math.abs,
  acos: Math.acos,
  asin: Math.asin,
  atan: Math.atan,
  atan2: Math.atan2,
  ceil: Math.ceil,
  cos: Math.cos,
  exp: Math.exp,
  floor: Math.floor,
  hypot: Math.hypot,
  log: Math.log,
  max: Math.max,
  min: Math.min,
  pow: Math.pow,
  random: Math.random,
  round: Math.round,
  sin: Math.sin,
  sqrt: Math.sqrt,
  tan: Math.tan,
  clamp: (a, b, c) => Math.max(b, Math.min(c, a)),
  // date functions
  now: Date.now,
  utc: Date.UTC,
  datetime: datetime,
  date: d => new Date(d).getDate(),
  day: d => new Date(d).getDay(),
  year: d => new Date(d).getFullYear(),
  month: d => new Date(d).getMonth(),
  hours: d => new Date(d).getHours(),
  minutes: d => new Date(d).getMinutes(),
  seconds: d => new Date(d).getSeconds(),
  milliseconds: d => new Date(d).getMilliseconds(),
  time: d => new Date(d).getTime(),
  timezoneoffset: d => new Date(d).getTimezoneOffset(),
  utcdate: d => new Date(d).getUTCDate(),
  utcday: d => new Date(d).getUTCDay(),
  utcyear: d => new Date(d).getUTCFullYear(),
  utcmonth: d => new Date(d).getUTCMonth(),
  utchours: d => new Date(d).getUTCHours(),
  utcminutes: d => new Date(d).getUTCMinutes(),
  utcseconds: d => new Date(d).getUTCSeconds(),
  utcmilliseconds: d => new Date(d).getUTCMilliseconds(),
  // sequence functions
  length: x => x.length,
  join: function () {
    return apply('join', arguments);
  },
  indexof: function () {
    return apply('indexOf', arguments);
  },
  lastindexof: function () {
    return apply('lastIndexOf', arguments);
  },
  slice: function () {
    return apply('slice', arguments);
  },
  reverse: x => x.slice().reverse(),
  sort: x => x.slice().sort(ascending),
  // string functions
  parseFloat: parseFloat,
  parseInt: parseInt,
  upper: x => String(x).toUpperCase(),
  lower: x => String(x).toLowerCase(),
  substring: function () {
    return apply('substring', arguments, String);
  },
  split: function () {
    return apply('split', arguments, String);
  },
  replace: function () {
    return apply('replace', arguments, String);
  },
  trim: x => String(x).trim(),
  // Base64 encode/decode
  // Convert binary string to base64-encoded ascii
  btoa: x => btoa(x),
  // Convert base64-encoded ascii to binary string
  atob: x => atob(x),
  // URI encoding
  encodeURIComponent: x => encodeURIComponent(x),
  // regexp functions
  regexp: RegExp,
  test: (r, t) => RegExp(r).test(t)
};

const EventFunctions = ['view', 'item', 'group', 'xy', 'x', 'y'];
const DisallowedMethods = new Set([Function, eval, setTimeout, setInterval]);
if (typeof setImmediate === 'function') DisallowedMethods.add(setImmediate);
const Visitors = {
  // global and sticky regexps carry lastIndex across calls, so hand out a
  // fresh instance per evaluation, as the generated code path does
  Literal: ($, n) => n.regex && n.value && (n.value.global || n.value.sticky) ? new RegExp(n.regex.pattern, n.regex.flags) : n.value,
  Identifier: ($, n) => {
    const id = n.name;
    return $.memberDepth > 0 ? id : id === 'datum' ? $.datum : id === 'event' ? $.event : id === 'item' ? $.item : Constants[id] || $.params['$' + id];
  },
  MemberExpression: ($, n) => {
    const d = !n.computed,
      o = $(n.object);
    if (d) $.memberDepth += 1;
    const p = $(n.property);
    if (d) $.memberDepth -= 1;
    if (DisallowedMethods.has(o[p])) {
      // eslint-disable-next-line no-console
      console.error(`Prevented interpretation of member "${p}" which could lead to insecure code execution`);
      return;
    }
    return o[p];
  },
  CallExpression: ($, n) => {
    const args = n.arguments;
    let name = n.callee.name;

    // handle special internal functions used by encoders
    // re-route to corresponding standard function
    if (name.startsWith('_')) {
      name = name.slice(1);
    }

    // special case "if" due to conditional evaluation of branches
    return name === 'if' ? $(args[0]) ? $(args[1]) : $(args[2]) : ($.fn[name] || Functions[name]).apply($.fn, args.map($));
  },
  ArrayExpression: ($, n) => n.elements.map($),
  BinaryExpression: ($, n) => Ops[n.operator]($(n.left), $(n.right)),
  UnaryExpression: ($, n) => Unary[n.operator]($(n.argument)),
  ConditionalExpression: ($, n) => $(n.test) ? $(n.consequent) : $(n.alternate),
  LogicalExpression: ($, n) => n.operator === '&&' ? $(n.left) && $(n.right) : $(n.left) || $(n.right),
  ObjectExpression: ($, n) => n.properties.reduce((o, p) => {
    $.memberDepth += 1;
    const k = $(p.key);
    $.memberDepth -= 1;
    const v = $(p.value);
    if (DisallowedObjectProperties.has(k)) {
      // eslint-disable-next-line no-console
      console.error(`Prevented interpretation of property "${k}" which could lead to insecure code execution`);
    } else if (DisallowedMethods.has(v)) {
      // eslint-disable-next-line no-console
      console.error(`Prevented interpretation of method "${k}" which could lead to insecure code execution`);
    } else {
      o[k] = v;
    }
    return o;
  }, {})
};
// trackio_flask change (see static/vendor/README.md): each parsed expression is turned once into
// a tree of closures with one reused evaluation context, instead of walking the AST (and
// allocating a context and six event closures) on every call. Encoders run once per channel per
// mark item, so this is most of a chart's first draw. Same semantics as the Visitors above.
function compile (n, $) {
  switch (n.type) {
    case 'Literal': {
      const value = n.value;
      if (n.regex && value && (value.global || value.sticky)) {
        const { pattern, flags } = n.regex;
        return () => new RegExp(pattern, flags);
      }
      return () => value;
    }
    case 'Identifier': {
      const id = n.name;
      if (id === 'datum') return () => $.datum;
      if (id === 'event') return () => $.event;
      if (id === 'item') return () => $.item;
      const key = '$' + id;
      return () => Constants[id] || $.params[key];
    }
    case 'MemberExpression': {
      const object = compile(n.object, $);
      const property = n.computed ? compile(n.property, $) : (name => () => name)(n.property.name);
      return () => {
        const o = object(), p = property();
        if (DisallowedMethods.has(o[p])) {
          // eslint-disable-next-line no-console
          console.error(`Prevented interpretation of member "${p}" which could lead to insecure code execution`);
          return;
        }
        return o[p];
      };
    }
    case 'CallExpression': {
      const args = n.arguments.map(a => compile(a, $));
      let name = n.callee.name;
      if (name.startsWith('_')) name = name.slice(1);
      if (name === 'if') return () => args[0]() ? args[1]() : args[2]();
      const count = args.length;
      return () => {
        const values = new Array(count);
        for (let i = 0; i < count; ++i) values[i] = args[i]();
        return ($.fn[name] || Functions[name]).apply($.fn, values);
      };
    }
    case 'ArrayExpression': {
      const elements = n.elements.map(e => compile(e, $));
      return () => elements.map(e => e());
    }
    case 'BinaryExpression': {
      const op = Ops[n.operator], left = compile(n.left, $), right = compile(n.right, $);
      return () => op(left(), right());
    }
    case 'UnaryExpression': {
      const op = Unary[n.operator], argument = compile(n.argument, $);
      return () => op(argument());
    }
    case 'ConditionalExpression': {
      const test = compile(n.test, $), yes = compile(n.consequent, $), no = compile(n.alternate, $);
      return () => test() ? yes() : no();
    }
    case 'LogicalExpression': {
      const left = compile(n.left, $), right = compile(n.right, $);
      return n.operator === '&&' ? () => left() && right() : () => left() || right();
    }
    case 'ObjectExpression': {
      const properties = n.properties.map(p => [
        p.key.type === 'Identifier' ? (name => () => name)(p.key.name) : compile(p.key, $),
        compile(p.value, $)
      ]);
      return () => properties.reduce((o, [key, value]) => {
        const k = key(), v = value();
        if (DisallowedObjectProperties.has(k)) {
          // eslint-disable-next-line no-console
          console.error(`Prevented interpretation of property "${k}" which could lead to insecure code execution`);
        } else if (DisallowedMethods.has(v)) {
          // eslint-disable-next-line no-console
          console.error(`Prevented interpretation of method "${k}" which could lead to insecure code execution`);
        } else {
          o[k] = v;
        }
        return o;
      }, {});
    }
    default: {
      // Anything else: the original tree walk.
      return () => {
        const walk = m => Visitors[m.type](walk, m);
        walk.memberDepth = 0;
        walk.fn = $.fn;
        walk.params = $.params;
        walk.datum = $.datum;
        walk.event = $.event;
        walk.item = $.item;
        return walk(n);
      };
    }
  }
}

// Facets instantiate the same expressions once per group: compile each (AST, functions) once.
const compiled = new WeakMap();
function interpreter (ast, fn) {
  let byFn = compiled.get(ast);
  if (!byFn) compiled.set(ast, byFn = new Map());
  let run = byFn.get(fn);
  if (!run) byFn.set(fn, run = makeInterpreter(ast, fn));
  return run;
}

function makeInterpreter (ast, fn) {
  const $ = { fn: Object.create(fn), params: undefined, datum: undefined, event: undefined, item: undefined };

  // route event functions to annotated vega event context
  EventFunctions.forEach(f => $.fn[f] = (...args) => $.event.vega[f](...args));
  const run = compile(ast, $);
  return (params, datum, event, item) => {
    // Save and restore: an expression may run again while it is running (re-entrancy).
    const p = $.params, d = $.datum, e = $.event, i = $.item;
    $.params = params;
    $.datum = datum;
    $.event = event;
    $.item = item;
    try {
      return run();
    } finally {
      $.params = p;
      $.datum = d;
      $.event = e;
      $.item = i;
    }
  };
}

var expression = {
  /**
   * Parse an expression used to update an operator value.
   */
  operator(ctx, expr) {
    const run = interpreter(expr.ast, ctx.functions);
    return _ => run(_);
  },
  /**
   * Parse an expression provided as an operator parameter value.
   */
  parameter(ctx, expr) {
    const run = interpreter(expr.ast, ctx.functions);
    return (datum, _) => run(_, datum);
  },
  /**
   * Parse an expression applied to an event stream.
   */
  event(ctx, expr) {
    const run = interpreter(expr.ast, ctx.functions);
    return event => run(undefined, undefined, event);
  },
  /**
   * Parse an expression used to handle an event-driven operator update.
   */
  handler(ctx, expr) {
    const run = interpreter(expr.ast, ctx.functions);
    return (_, event) => {
      const datum = event.item && event.item.datum;
      return run(_, datum, event);
    };
  },
  /**
   * Parse an expression that performs visual encoding.
   */
  encode(ctx, encode) {
    const {
        marktype,
        channels
      } = encode,
      fn = ctx.functions,
      swap = marktype === 'group' || marktype === 'image' || marktype === 'rect';
    const runs = {};
    for (const name in channels) runs[name] = interpreter(channels[name].ast, fn);
    return (item, _) => {
      const datum = item.datum;
      let m = 0,
        v;
      for (const name in channels) {
        v = runs[name](_, datum, undefined, item);
        if (item[name] !== v) {
          item[name] = v;
          m = 1;
        }
      }
      if (marktype !== 'rule') {
        adjustSpatial(item, channels, swap);
      }
      return m;
    };
  }
};

window.vegaInterpreter = { expressionInterpreter: expression };
})();
