// Validate one glTF/GLB file with the Khronos glTF validator and print its JSON report.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const [, , validatorDir, file] = process.argv;
const require = createRequire(`${validatorDir}/`);
const validator = require("gltf-validator");
const bytes = new Uint8Array(await readFile(file));
const report = await validator.validateBytes(bytes, { maxIssues: 100, writeTimestamp: false });
process.stdout.write(JSON.stringify(report));
