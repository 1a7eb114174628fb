"""Image metric ``classifier``: does a reference classifier still recognise the reconstruction?

Two columns per image: ``classifier_correct`` (1 if the argmax is the true label, else 0; its mean is the
recognition accuracy) and ``classifier_confidence`` (softmax probability of the true label).
"""

from __future__ import annotations

import torch

from privlab.errors import ConfigError
from privlab.measure.image.base import MetricOutput, SimilarityOptions, register_metric

__all__: list[str] = []


@register_metric(
    "classifier",
    unit="fraction",
    higher_is_better=True,
    columns={"classifier_correct": ("fraction", True), "classifier_confidence": ("probability", True)},
    description="does a reference classifier predict the true label of the reconstruction (1/0), and its confidence",
)
def _classifier(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    model, labels = opts.classifier, opts.labels
    if model is None or labels is None:
        raise ConfigError(
            "similarity metric 'classifier' needs a reference classifier and the true labels: "
            "score(..., classifier=model, labels=labels) (model takes [0, 1] images and returns logits)"
        )
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"classifier must be a torch.nn.Module returning logits, got {type(model).__name__}")
    param = next(model.parameters(), None)
    dev = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    correct, conf = [], []
    try:
        with torch.no_grad():
            for i in range(0, y.shape[0], 256):
                batch = y[i : i + 256].detach().to(dev, torch.float32)
                logits = model(batch)
                if logits.ndim != 2 or logits.shape[0] != batch.shape[0]:
                    raise ConfigError(
                        f"classifier must return logits of shape N×classes, got {tuple(logits.shape)} "
                        f"for input {tuple(batch.shape)}"
                    )
                lab = labels[i : i + 256].to(dev)
                if int(lab.max()) >= logits.shape[1]:
                    raise ConfigError(
                        f"label {int(lab.max())} is out of range for a {logits.shape[1]}-class classifier"
                    )
                correct.append((logits.argmax(1) == lab).double().cpu())
                conf.append(logits.float().softmax(1).gather(1, lab[:, None]).squeeze(1).double().cpu())
    finally:
        model.train(was_training)
    note = (
        "reference classifier on the reconstruction (eval mode, [0, 1] input): classifier_correct = 1 if argmax == "
        "true label else 0 (mean = recognition accuracy), classifier_confidence = softmax probability of the true label"
    )
    return MetricOutput({"classifier_correct": torch.cat(correct), "classifier_confidence": torch.cat(conf)}, note)
