import numpy as np

from minirpn import FasterRCNN
from minirpn.step_through import STAGE_OUTPUTS

from test_faster_rcnn import tiny_batch, tiny_config

INFERENCE = ["preprocess", "features", "anchors", "rpn", "proposals",
             "roi_features", "head", "detections"]
TRAINING = ["preprocess", "features", "anchors", "rpn", "proposals",
            "anchor_labels", "proposal_targets", "losses", "roi_features",
            "head", "detections"]


def test_inference_trace_keeps_every_stage_in_order():
    model = FasterRCNN(tiny_config())
    images, _ = tiny_batch()
    trace = model.step_through(images[0])
    assert trace.names == INFERENCE
    assert set(trace.names) <= set(STAGE_OUTPUTS)
    anchors = trace["anchors"]["anchors"]
    feats = trace["features"]["features"]
    assert anchors.shape == (feats.shape[2] * feats.shape[3] * model.config.num_anchors, 4)
    assert trace["rpn"]["scores"].shape == (len(anchors), 2)
    props = trace["proposals"]
    assert len(props["boxes"]) <= len(props["before_nms_boxes"])
    assert len(props["removed_by_nms"]) + len(props.result.step("nms").removed) >= 0
    head = trace["head"]
    P, K = head["class_scores"].shape
    assert head["class_boxes"].shape == (P, K, 4) and K == 3
    np.testing.assert_allclose(head["class_probs"].sum(axis=1), 1.0)
    assert trace["roi_features"]["crops"].shape[0] == P
    assert all(s.summary and s.seconds >= 0 for s in trace)


def test_training_trace_explains_anchors_and_matches_detect():
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    trace = model.step_through(images[0], targets[0])
    assert trace.names == TRAINING
    labels = trace["anchor_labels"].result
    ignored = int(np.flatnonzero(labels.labels == -1)[0])
    assert f"anchor {ignored}" in labels.explain(ignored)
    assert trace["losses"]["total"] > 0
    det = model.detect(images[:1])[0]
    np.testing.assert_allclose(trace["detections"]["boxes"], det["boxes"])


def test_lazy_trace_runs_one_stage_at_a_time():
    model = FasterRCNN(tiny_config())
    images, _ = tiny_batch()
    trace = model.step_through(images[0], lazy=True)
    assert trace.names == []
    assert trace.next().name == "preprocess"
    assert trace.next().name == "features"
    assert trace.names == ["preprocess", "features"]
    trace.run()
    assert trace.names == INFERENCE and trace.next() is None
    assert "detections" in trace.summary()


def _spy_on(model, names):
    """Record which of the model's stage methods run, tagged by phase."""
    calls, phase = [], ["?"]
    for name in names:
        def spy(*args, _name=name, _method=getattr(model, name), **kwargs):
            calls.append((phase[0], _name))
            return _method(*args, **kwargs)
        setattr(model, name, spy)
    return calls, phase


def test_step_through_runs_the_stage_methods_of_forward_train_and_detect():
    """No second pipeline: a trace calls the very stage methods that a
    training step and detect call (the same objects, so a change to a stage
    shows up in all three)."""
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    training = ("rpn_outputs", "anchor_labels", "rpn_loss", "proposals",
                "proposal_targets", "head_loss")
    inference = ("rpn_outputs", "proposals", "head_outputs", "detections")
    calls, phase = _spy_on(model, set(training) | set(inference))
    phase[0] = "train"
    model.forward_train(images[:1], targets[:1], rng=np.random.default_rng(0))
    phase[0] = "detect"
    model.detect(images[:1])
    phase[0] = "trace"
    model.step_through(images[0], targets[0])
    ran = {p: {name for q, name in calls if q == p} for p in ("train", "detect", "trace")}
    assert ran["train"] == set(training)
    assert ran["detect"] == set(inference)
    assert ran["trace"] == set(training) | set(inference)
