// Building page elements. Text is always set through text nodes and attributes through
// setAttribute, never parsed as HTML, so text a user typed can never become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

function applyProps(node, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name === "value" || name === "checked" || name === "selected") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  return node;
}

// h("button", {class: "primary", onclick: save}, "Save")
export function h(tag, props, ...children) {
  return append(applyProps(document.createElement(tag), props), children);
}

// s("rect", {x: 0, y: 0, width: 10, height: 4}) for charts.
export function s(tag, props, ...children) {
  return append(applyProps(document.createElementNS(SVG_NS, tag), props), children);
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function replace(node, ...children) {
  return append(clear(node), children);
}
