"""Ceilings measured by PyTorch on the same card, in the same run as `x2v bench`: bf16 torch.matmul at
the Wan DiT shapes and torch SDPA (cuDNN and flash back-ends) at the DiT attention shapes.
Prints one JSON object per line, like `x2v bench`. Skips itself where torch or a GPU is missing."""
import json
import sys

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(json.dumps({"bench": "torch", "skipped": f"no torch: {e}"}))
    sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"bench": "torch", "skipped": "no CUDA device"}))
    sys.exit(0)

dev = torch.cuda.get_device_name(0)


def timed(f, reps=5):
    f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


for name, M, K, N in [("14b qkvo/cross 480p", 32760, 5120, 5120), ("14b ffn_up 480p", 32760, 5120, 13824),
                      ("14b ffn_down 480p", 32760, 13824, 5120), ("1.3b ffn_up 480p", 32760, 1536, 8960),
                      ("square 8192", 8192, 8192, 8192)]:
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) * 0.02
    ms = timed(lambda: x @ w.t())
    print(json.dumps({"bench": "torch_gemm", "name": name, "M": M, "K": K, "N": N, "ms": ms,
                      "tflops": 2 * M * K * N / ms / 1e9, "device": dev, "torch": torch.__version__}), flush=True)
    del x, w

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

for name, L, Lk, H in [("14b self 480p", 32760, 32760, 40), ("1.3b self 480p", 32760, 32760, 12),
                       ("14b self 720p", 75600, 75600, 40), ("14b cross 480p", 32760, 512, 40)]:
    q = torch.randn(1, H, L, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, H, Lk, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(1, H, Lk, 128, device="cuda", dtype=torch.bfloat16)
    for be_name, be in [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)]:
        try:
            with sdpa_kernel(be):
                ms = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), reps=3)
            print(json.dumps({"bench": "torch_sdpa", "name": name, "impl": be_name, "Lq": L, "Lk": Lk, "H": H,
                              "ms": ms, "tflops": 4 * L * Lk * H * 128 / ms / 1e9, "device": dev}), flush=True)
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"bench": "torch_sdpa", "name": name, "impl": be_name, "error": str(e)[:200]}))
    del q, k, v
    torch.cuda.empty_cache()
