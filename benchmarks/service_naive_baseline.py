"""The baseline the service benchmark compares against: the obvious tutorial FastAPI service.

PIL decode, torchvision transforms, eager PyTorch, an ``async def`` endpoint (so inference runs
on the event loop: one request at a time). Same bundle weights and preprocessing numbers as ours.
Run: python benchmarks/service_naive_baseline.py --model BUNDLE --port 8001
"""

from __future__ import annotations

import argparse
import io

import torch
import uvicorn
from fastapi import FastAPI, File, UploadFile
from PIL import Image
from torchvision import transforms

from inspection.bundle import load_bundle


def build_app(model_path: str) -> FastAPI:
    bundle = load_bundle(model_path)
    card = bundle.card
    model = bundle.build_torch_model().eval()
    transform = transforms.Compose([
        transforms.Resize(card.preprocess.input_size),
        transforms.ToTensor(),
        transforms.Normalize(card.preprocess.mean, card.preprocess.std),
    ])
    app = FastAPI()

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)) -> dict:
        image = Image.open(io.BytesIO(await file.read())).convert("RGB")
        x = transform(image).unsqueeze(0)
        with torch.no_grad():
            probs = torch.softmax(model(x), dim=1)[0]
        i = int(probs.argmax())
        return {"label": card.classes[i], "confidence": float(probs[i]),
                "scores": {c: float(p) for c, p in zip(card.classes, probs, strict=True)}}

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    uvicorn.run(build_app(args.model), host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
