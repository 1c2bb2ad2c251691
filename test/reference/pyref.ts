/**
 * Running the Python references and reading the safetensors files they write.
 *
 *   const { stdout } = await runPython([script, ...args], hfPython());
 *   const { tensors, metadata } = await readRefSafetensors(out);
 */
import { spawn } from 'node:child_process';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { openFileSource } from '../../src/io/source-node.ts';

export interface RefTensor {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
}

/** Reads a safetensors file of F32 / I32 / U8 tensors into typed arrays, plus its metadata. */
export async function readRefSafetensors(path: string): Promise<{ tensors: Map<string, RefTensor>; metadata: Record<string, string> }> {
  const file = await SafetensorsFile.open(await openFileSource(path));
  try {
    const tensors = new Map<string, RefTensor>();
    for (const [name, info] of file.tensors) {
      const bytes = await file.readTensor(name);
      // copy into a fresh, aligned buffer: the read may be a view at any offset
      const buf = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(buf).set(bytes);
      let data: RefTensor['data'];
      if (info.dtype === 'F32') data = new Float32Array(buf);
      else if (info.dtype === 'I32') data = new Int32Array(buf);
      else if (info.dtype === 'U8') data = new Uint8Array(buf);
      else throw new Error(`${path}: tensor ${name} has dtype ${info.dtype}, expected F32, I32 or U8`);
      tensors.set(name, { data, shape: info.shape });
    }
    return { tensors, metadata: { ...file.metadata } };
  } finally {
    await file.close();
  }
}

/** Runs `python` (the venv's: bench/hf.ts's hfPython) with args; rejects with its output when it fails. */
export function runPython(args: string[], python: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => reject(new Error(`cannot start ${python}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${python} ${args.join(' ')} exited with ${code}:\n${stderr || stdout}`));
    });
  });
}
