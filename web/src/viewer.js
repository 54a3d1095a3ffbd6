// One 3D view: a lit mesh (three.js) or Gaussian splats (Spark), orbit controls, a wireframe
// switch. `element.dataset.state` is empty | loading | ready | error, for people and tests.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

export const BACKGROUND = 0x1d2026;
const FRAMES_BEFORE_READY = 8;
const FRAMES_AFTER_CHANGE = 30;
//: INRIA .ply and antimatter15 .splat files are in the RDF frame (y down, z away); the world
//: frame (glTF's, and .spz's) is a half turn about X from it. See genesis3d/geometry/frames.py.
const RDF_FILES = /\.(ply|splat)$/i;

export class Viewer {
  constructor(container) {
    this.element = document.createElement("div");
    this.element.className = "viewer";
    this.element.dataset.state = "empty";
    this.canvas = document.createElement("canvas");
    this.title = document.createElement("div");
    this.title.className = "viewer-title";
    this.element.append(this.canvas, this.title);
    container.append(this.element);

    this.renderer = new THREE.WebGLRenderer({
      canvas: this.canvas,
      antialias: true,
      preserveDrawingBuffer: true,
    });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(BACKGROUND, 1);
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(40, 1, 0.01, 1000);
    this.camera.position.set(0, 0, 3);
    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.enableDamping = true;
    this.controls.addEventListener("change", () => this.invalidate(2));
    // Frames are drawn on demand (moves, loads, Spark's sorting), not continuously: a page
    // with two viewers stays light on a phone or a GPU-less machine.
    this.pendingFrames = FRAMES_AFTER_CHANGE;
    this.spark = new SparkRenderer({ renderer: this.renderer, onDirty: () => this.invalidate(2) });
    this.scene.add(this.spark);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x444455, 1.6));
    const key = new THREE.DirectionalLight(0xffffff, 2.2);
    key.position.set(2, 3, 4);
    this.scene.add(key);
    const rim = new THREE.DirectionalLight(0xaaccff, 0.8);
    rim.position.set(-3, 1, -2);
    this.scene.add(rim);

    this.content = null;
    this.wireframe = false;
    this.framesSinceLoad = 0;
    this.loadToken = 0;
    new ResizeObserver(() => this.resize()).observe(this.element);
    this.resize();
    this.renderer.setAnimationLoop(() => this.frame());
  }

  resize() {
    const width = Math.max(this.element.clientWidth, 1);
    const height = Math.max(this.element.clientHeight, 1);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.invalidate();
  }

  invalidate(frames = FRAMES_AFTER_CHANGE) {
    this.pendingFrames = Math.max(this.pendingFrames, frames);
  }

  frame() {
    this.controls.update();
    if (this.pendingFrames <= 0) return;
    this.pendingFrames -= 1;
    this.renderer.render(this.scene, this.camera);
    if (this.element.dataset.state === "loading" && this.content) {
      this.framesSinceLoad += 1;
      if (this.framesSinceLoad >= FRAMES_BEFORE_READY) this.element.dataset.state = "ready";
    }
  }

  clear() {
    if (this.content) {
      this.scene.remove(this.content);
      this.content.traverse?.((node) => {
        node.geometry?.dispose?.();
      });
      this.content.dispose?.();
    }
    this.content = null;
    this.element.dataset.state = "empty";
    this.element.dataset.kind = "";
    this.element.dataset.file = "";
    this.invalidate();
  }

  /** Show an asset from its bytes. kind: "mesh" (GLB) or "splats" (PLY, .splat, .spz, GLB). */
  async show(bytes, { kind, fileName, title }) {
    const token = ++this.loadToken;
    this.clear();
    this.element.dataset.state = "loading";
    this.element.dataset.kind = kind;
    this.element.dataset.file = fileName;
    this.title.textContent = title || "";
    try {
      const object = kind === "mesh" ? await loadMesh(bytes) : await loadSplats(bytes, fileName);
      if (token !== this.loadToken) return;
      this.content = object;
      this.scene.add(object);
      this.setWireframe(this.wireframe);
      this.frameObject(object, kind);
      this.framesSinceLoad = 0;
      this.invalidate();
    } catch (error) {
      if (token !== this.loadToken) return;
      this.element.dataset.state = "error";
      this.title.textContent = `${title || ""}: could not show it (${error.message || error})`;
      throw error;
    }
  }

  frameObject(object, kind) {
    const box =
      kind === "splats"
        ? object.getBoundingBox(true).applyMatrix4(object.matrixWorld)
        : new THREE.Box3().setFromObject(object);
    if (box.isEmpty()) return;
    const center = box.getCenter(new THREE.Vector3());
    const size = box.getSize(new THREE.Vector3()).length() || 1;
    const distance = size / (2 * Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2))) * 1.1;
    this.controls.target.copy(center);
    this.camera.position.copy(center).add(new THREE.Vector3(0.35, 0.25, 1).normalize().multiplyScalar(distance));
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    this.controls.update();
  }

  setWireframe(on) {
    this.wireframe = on;
    this.invalidate(2);
    this.content?.traverse?.((node) => {
      if (node.isMesh && node.material && !(node instanceof SplatMesh)) {
        for (const material of [node.material].flat()) material.wireframe = on;
      }
    });
  }
}

function loadMesh(bytes) {
  return new Promise((resolve, reject) => {
    new GLTFLoader().parse(bytes, "", (gltf) => resolve(gltf.scene), reject);
  });
}

async function loadSplats(bytes, fileName) {
  const mesh = new SplatMesh({ fileBytes: new Uint8Array(bytes), fileName });
  await mesh.initialized;
  if (RDF_FILES.test(fileName)) mesh.quaternion.set(1, 0, 0, 0);
  mesh.updateMatrixWorld(true);
  return mesh;
}
