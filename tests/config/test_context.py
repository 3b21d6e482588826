"""The project's Kedro context: Kedro's parameter validation keeps what does not parse."""

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from pydantic import ValidationError

from convnets.config.context import ProjectContext
from convnets.parameters import InvalidParameters, Training

pytestmark = pytest.mark.slow


def test_kedros_validation_keeps_a_bad_section_for_the_hook_and_pydantics_error_stays(
    kedro_project,
):
    bootstrap_project(kedro_project)
    bad = {"catdog": {"training": {"epochs": 0}}}
    with KedroSession.create(project_path=kedro_project, runtime_params=bad) as session:
        context = session.load_context()
        assert isinstance(context, ProjectContext)
        kept = context.params["catdog"]["training"]
    assert isinstance(kept, InvalidParameters)
    (line,) = [line for line in kept.explain("catdog.training") if "epochs" in line]
    assert line.startswith("catdog.training.epochs: Input should be greater than 0 (got 0)")
    # Outside Kedro's validation the same section raises as any pydantic model does.
    with pytest.raises(ValidationError, match="epochs"):
        Training.model_validate(kept.value)
