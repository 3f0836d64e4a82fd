# AMX tiles (csrc/amx.h): which tile path the bf16 and int8 products of >= 16 rows take -- the
# AMX instructions, their exact plain-C emulation, or none (the vector kernels) -- and why.

AMX_MODES = {"off": 0, "amx": 1, "amx-emulated": 2}


def amx_info():
    """{'mode': 'amx' | 'amx-emulated' | 'off', 'supported': bool, 'cpu': {...}, 'requested': ...,
    'error': str or None}: the tile path of bf16 and int8 products with >= 16 rows (the whole
    product's rows; fewer run the vector kernels). 'cpu' has CPUID's amx-tile, amx-bf16 and
    amx-int8 bits and 'os_permission' (Linux granted the tile data to this process);
    'requested' is FASTRNN_ISA when it asks for amx or amx-emulated, and 'error' says why an
    'amx' request cannot run here."""
    import os
    bits = frnn_amx_cpu()
    cpu = {"amx-tile": bool(bits & 1), "amx-bf16": bool(bits & 2), "amx-int8": bool(bits & 4),
           "os_permission": bool(bits & 8)}
    env = os.environ.get("FASTRNN_ISA", "")
    requested = env if env.startswith("amx") else None
    error = None
    if env == "amx" and not frnn_amx_supported():
        error = amx_missing(cpu)
    elif requested is not None and env not in AMX_MODES:
        error = f"FASTRNN_ISA={env!r}: expected 'amx' or 'amx-emulated' (or avx512, avx2, none)"
    return {"mode": frnn_amx_mode_name(frnn_amx_mode()).decode(), "supported": bool(frnn_amx_supported()),
            "cpu": cpu, "requested": requested, "error": error}


def amx_missing(cpu):
    """Why this CPU cannot run the AMX tile path (cpu: amx_info()['cpu'])."""
    lacking = [k for k in ("amx-tile", "amx-bf16", "amx-int8") if not cpu[k]]
    if lacking:
        return (f"this CPU lacks {', '.join(lacking)} (CPUID leaf 7: Intel Sapphire Rapids or later has "
                "AMX); FASTRNN_ISA=amx-emulated runs the tile path through its exact emulation instead")
    return ("the OS did not grant this process the AMX tile state (Linux >= 5.16: arch_prctl("
            "ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) failed)")


def set_amx(name):
    """Force the tile path: 'amx' (the instructions; ValueError when this CPU or OS cannot run
    them), 'amx-emulated' (the exact plain-C emulation: slow, for tests), 'off', or None for the
    default (FASTRNN_ISA, else the instructions where supported and the float32 engine runs
    AVX-512)."""
    if name is None:
        frnn_set_amx_mode(-1)
        return
    if name not in AMX_MODES:
        raise ValueError(f"name: expected one of {sorted(AMX_MODES)} or None, got {name!r}")
    if name == "amx" and not frnn_amx_supported():
        raise ValueError(f"name: 'amx': {amx_missing(amx_info()['cpu'])}")
    frnn_set_amx_mode(AMX_MODES[name])


def check_amx_request():
    """RuntimeError when FASTRNN_ISA asks for the AMX tiles and they cannot run here (an explicit
    request is not silently replaced by another path)."""
    error = amx_info()["error"]
    if error is not None:
        raise RuntimeError(f"FASTRNN_ISA={__import__('os').environ.get('FASTRNN_ISA')}: {error}")
