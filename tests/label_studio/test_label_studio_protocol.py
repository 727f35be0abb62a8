"""Label Studio's labeling config, annotations and predictions, without a server."""

import pytest
from _ls_tasks import CONFIG

from skal_cxr.label_studio._protocol import (
    ChoicesControl,
    annotation_label,
    make_prediction,
    parse_label_config,
    project_id,
)

CONTROL = ChoicesControl("diagnosis", "image", "image", ("normal", "pneumonia"))


def test_the_choices_control_and_its_image_are_read():
    assert parse_label_config(CONFIG) == CONTROL
    three = """<View><Header value="Severity"/><Image name="xray" value="$url"/>
      <Choices name="note" toName="other"><Choice value="a"/><Choice value="b"/></Choices>
      <Choices name="sev" toName="xray"><Choice value="normal"/><Choice value="moderate"/>
      <Choice value="severe"/></Choices></View>"""
    assert parse_label_config(three) == ChoicesControl(
        "sev", "xray", "url", ("normal", "moderate", "severe")
    )


@pytest.mark.parametrize(
    "config",
    [
        "<View><Image name='i' value='$i'/></View>",
        "<View><Image name='i' value='$i'/><Choices name='c' toName='i'>"
        "<Choice value='only'/></Choices></View>",
        "<View><Choices name='c' toName='i'><Choice value='a'/><Choice value='b'/></Choices>",
    ],
)
def test_a_config_without_a_usable_choices_control_is_refused(config):
    with pytest.raises(ValueError, match="labeling config"):
        parse_label_config(config)


def test_project_ids_in_every_form():
    assert project_id("12.1700000000") == "12"
    assert project_id(12) == "12"
    assert project_id({"id": 5, "title": "x"}) == "5"
    assert project_id(None) is None and project_id("") is None


def _annotation(choices, **extra):
    item = {"from_name": "diagnosis", "to_name": "image", "type": "choices"}
    return {"id": 1, "result": [{**item, "value": {"choices": choices}}], **extra}


def test_an_annotation_gives_the_code_of_its_choice():
    assert annotation_label(_annotation(["pneumonia"]), CONTROL) == 1
    assert annotation_label(_annotation(["normal"]), CONTROL) == 0
    # skipped, unknown or without a result: no label
    assert annotation_label(_annotation(["normal"], was_cancelled=True), CONTROL) is None
    assert annotation_label(_annotation(["other"]), CONTROL) is None
    assert annotation_label({"id": 2, "result": []}, CONTROL) is None


def test_a_prediction_holds_the_class_probabilities_and_score():
    acquisition = {"function": "mean_std", "value": 0.25, "rank": 3}
    p = make_prediction(CONTROL, [0.3, 0.7], -0.25, "skal_cxr-4", acquisition)
    assert p["score"] == -0.25 and p["model_version"] == "skal_cxr-4"
    (item,) = p["result"]
    assert item["value"] == {"choices": ["pneumonia"]} and item["score"] == 0.7
    assert item["meta"] == {
        "acquisition": acquisition,
        "probabilities": {"normal": 0.3, "pneumonia": 0.7},
    }
    cold = make_prediction(CONTROL, None, 2, "skal_cxr-cold-start", {"rank": 2})
    assert cold["result"] == [] and cold["score"] == 2.0
