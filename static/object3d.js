// The Object3D viewer (an ES module, imported by gallery.js only when someone opens a 3D object,
// so the media page's first screen never loads three.js). Draws one logged glb/gltf/obj/stl/ply
// file with three.js in its card: orbit with the mouse, wheel to zoom. Files are fetched and
// parsed here (no loader fetches anything itself), so the page's CSP needs nothing new.
import * as THREE from "./vendor/three-0.187.0/build/three.module.js";
import { OrbitControls } from "./vendor/three-0.187.0/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "./vendor/three-0.187.0/examples/jsm/loaders/GLTFLoader.js";
import { OBJLoader } from "./vendor/three-0.187.0/examples/jsm/loaders/OBJLoader.js";
import { PLYLoader } from "./vendor/three-0.187.0/examples/jsm/loaders/PLYLoader.js";
import { STLLoader } from "./vendor/three-0.187.0/examples/jsm/loaders/STLLoader.js";

const MAX_VIEWERS = 4; // WebGL contexts are scarce: the oldest open viewer is closed first
const open = [];

function meshMaterial() {
  return new THREE.MeshStandardMaterial({ color: 0x94a3b8, roughness: 0.7, side: THREE.DoubleSide });
}

// A self-contained .gltf keeps its buffer in a data: URI; pack it as GLB bytes instead, so
// GLTFLoader needs no fetch (the page's connect-src allows only this server).
function gltfAsGlb(text) {
  const doc = JSON.parse(text);
  const buffers = doc.buffers || [];
  if (buffers.length > 1) throw new Error("a .gltf with several buffers cannot be shown here; log it as .glb");
  let bin = new Uint8Array(0);
  if (buffers.length === 1) {
    const match = /^data:[^,]*;base64,(.*)$/.exec(buffers[0].uri || "");
    if (!match) throw new Error("the .gltf buffer is not embedded");
    const raw = atob(match[1]);
    bin = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bin[i] = raw.charCodeAt(i);
    delete buffers[0].uri;
  }
  const encoder = new TextEncoder();
  let json = encoder.encode(JSON.stringify(doc));
  const jsonPad = (4 - (json.length % 4)) % 4;
  const binPad = (4 - (bin.length % 4)) % 4;
  const total = 12 + 8 + json.length + jsonPad + (bin.length ? 8 + bin.length + binPad : 0);
  const out = new DataView(new ArrayBuffer(total));
  const bytes = new Uint8Array(out.buffer);
  out.setUint32(0, 0x46546c67, true); out.setUint32(4, 2, true); out.setUint32(8, total, true);
  out.setUint32(12, json.length + jsonPad, true); out.setUint32(16, 0x4e4f534a, true);
  bytes.set(json, 20); bytes.fill(0x20, 20 + json.length, 20 + json.length + jsonPad);
  if (bin.length) {
    const at = 20 + json.length + jsonPad;
    out.setUint32(at, bin.length + binPad, true); out.setUint32(at + 4, 0x004e4942, true);
    bytes.set(bin, at + 8);
  }
  return out.buffer;
}

function parse(format, buffer) {
  if (format === "glb" || format === "gltf") {
    const data = format === "gltf" ? gltfAsGlb(new TextDecoder().decode(buffer)) : buffer;
    return new Promise((resolve, reject) => new GLTFLoader().parse(data, "", (gltf) => resolve(gltf.scene), reject));
  }
  if (format === "obj") return new OBJLoader().parse(new TextDecoder().decode(buffer));
  if (format === "stl") return new THREE.Mesh(new STLLoader().parse(buffer), meshMaterial());
  if (format === "ply") {
    const geometry = new PLYLoader().parse(buffer);
    if (geometry.index === null && !geometry.hasAttribute("normal")) {
      const colored = geometry.hasAttribute("color");
      return new THREE.Points(geometry, new THREE.PointsMaterial({ size: 0.02, vertexColors: colored, color: colored ? 0xffffff : 0x94a3b8 }));
    }
    if (!geometry.hasAttribute("normal")) geometry.computeVertexNormals();
    return new THREE.Mesh(geometry, meshMaterial());
  }
  throw new Error(`${format} files cannot be shown here; download the file instead`);
}

function countVertices(object) {
  let count = 0;
  object.traverse((node) => {
    if (node.geometry && node.geometry.attributes && node.geometry.attributes.position) {
      count += node.geometry.attributes.position.count;
    }
  });
  return count;
}

function close(viewer) {
  viewer.controls.dispose();
  viewer.renderer.dispose();
  viewer.renderer.forceContextLoss();
  viewer.canvas.remove();
  viewer.host.dataset.state = "closed";
  viewer.host.querySelector(".object3d-load").hidden = false;
}

export async function show(host) {
  if (host.dataset.state === "loading" || host.dataset.state === "ready") return;
  host.dataset.state = "loading";
  const button = host.querySelector(".object3d-load");
  const note = host.querySelector(".object3d-note");
  try {
    const response = await fetch(host.dataset.src);
    if (!response.ok) throw new Error(`the file answered ${response.status}`);
    const object = await parse(host.dataset.format, await response.arrayBuffer());
    const canvas = document.createElement("canvas");
    canvas.className = "object3d-canvas";
    const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    const width = host.clientWidth || 240;
    const height = Math.round(width * 0.75);
    renderer.setPixelRatio(window.devicePixelRatio || 1);
    renderer.setSize(width, height, false);
    const scene = new THREE.Scene();
    scene.background = new THREE.Color(getComputedStyle(host).getPropertyValue("--panel").trim() || "#fafafa");
    scene.add(new THREE.HemisphereLight(0xffffff, 0x666666, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.5);
    sun.position.set(3, 5, 4);
    scene.add(sun);
    scene.add(object);
    const box = new THREE.Box3().setFromObject(object);
    const size = box.getSize(new THREE.Vector3()).length() || 1;
    const centre = box.getCenter(new THREE.Vector3());
    const camera = new THREE.PerspectiveCamera(45, width / height, size / 100, size * 100);
    camera.position.copy(centre).add(new THREE.Vector3(size * 0.6, size * 0.5, size * 0.9));
    const controls = new OrbitControls(camera, canvas);
    controls.target.copy(centre);
    controls.update();
    const draw = () => renderer.render(scene, camera);
    controls.addEventListener("change", draw);
    button.hidden = true;
    host.prepend(canvas);
    draw();
    const viewer = { host, canvas, renderer, controls };
    open.push(viewer);
    if (open.length > MAX_VIEWERS) close(open.shift());
    host.dataset.vertices = String(countVertices(object));
    host.dataset.state = "ready";
    draw();
    if (note) note.textContent = "drag to turn, wheel to zoom";
  } catch (error) {
    host.dataset.state = "error";
    if (note) note.textContent = `Cannot show this object: ${error && error.message ? error.message : error}`;
  }
}
