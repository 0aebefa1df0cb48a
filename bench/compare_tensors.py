# bench/compare_tensors.py A.safetensors NAME_A B.safetensors NAME_B: relative L2 and cosine of two
# tensors (f32, bf16 or f16), with the bf16 bar (rel L2 <= 2e-2, cosine >= 0.999). Needs only numpy,
# so it runs on the GPU machine against outputs of `x2v run-component`.
import json, struct, sys
import numpy as np
def load(path, name):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        meta = json.loads(f.read(n))[name]
        f.seek(8 + n + meta['data_offsets'][0])
        raw = f.read(meta['data_offsets'][1] - meta['data_offsets'][0])
    dt = meta['dtype']
    if dt == 'F32': a = np.frombuffer(raw, np.float32)
    elif dt == 'F16': a = np.frombuffer(raw, np.float16).astype(np.float32)
    elif dt == 'BF16': a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    else: raise SystemExit('dtype ' + dt)
    return a.astype(np.float64)
a, b = load(sys.argv[1], sys.argv[2]), load(sys.argv[3], sys.argv[4])
rel = np.linalg.norm(a - b) / np.linalg.norm(b)
cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
print(f"{sys.argv[2]} vs {sys.argv[4]}: rel L2 {rel:.3e} cos {cos:.6f} {'ok' if rel <= 2e-2 and cos >= 0.999 else 'FAIL'}")
