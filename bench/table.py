"""Reads JSON lines of `x2v bench` and bench/torch_ceilings.py; prints a short table."""
import json
import sys

rows = []
for path in sys.argv[1:]:
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
for r in rows:
    b = r.get("bench")
    if "error" in r:
        print(f"{b:11s} {r.get('name', ''):28s} {r.get('impl', r.get('dtype', '')):6s} ERROR {r['error'][:60]}")
    elif b in ("gemm", "torch_gemm"):
        print(f"{b:11s} {r['name']:28s} {r['ms']:9.3f} ms {r['tflops']:6.0f} TFLOP/s")
    elif b in ("attn", "torch_sdpa"):
        print(f"{b:11s} {r['name']:28s} {r['impl']:6s} {r['ms']:9.3f} ms {r['tflops']:6.0f} TFLOP/s")
    elif b == "conv3d":
        print(f"{b:11s} {r['name']:28s} {r['dtype']:6s} {r['ms']:9.3f} ms {r['tflops']:6.1f} TFLOP/s")
    elif b == "dit":
        print(f"{b:11s} {r['model'] + ' ' + r['res']:28s} layers {r['layers']:3d} fwd {r['forward_ms']:8.1f} ms "
              f"cfg {r['cfg_ms']:8.1f} ms peak {r['peak_gib']:.1f} GiB "
              f"{r['tflops_effective']:.0f} TFLOP/s{'' if r['output_finite'] else ' NON-FINITE'}")
    elif b in ("vae_decode", "vae_encode") and "ms" in r:
        print(f"{b:11s} {r['res']:28s} {r['frames']:3d} frames {r['ms']:8.1f} ms peak {r['peak_gib']:.2f} GiB "
              f"(output {r['output_gib']:.2f} GiB)")
    elif b == "t5" and "ms" in r:
        print(f"{b:11s} {'umt5-xxl 512 tokens':28s} layers {r['layers']:3d} {r['ms']:8.2f} ms peak {r['peak_gib']:.1f} GiB")
