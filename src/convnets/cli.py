"""``kedro run`` for this project: Kedro's own command, with short errors and clean stops.

Kedro uses a project's ``cli.py`` in place of its ``run`` command (``kedro run`` and
``python -m convnets``). This one takes every option of Kedro's, plus ``--verbose``, and:

- refuses an unknown environment, an unknown parameter key (a typo Kedro would ignore)
  and a second run in the folder before TensorFlow is even imported;
- turns the mistakes a user is expected to make (a bad parameter, an unknown pipeline
  or model, missing data, a locked folder) into one message and exit status 2, the
  traceback only with ``--verbose``;
- stops cleanly on Ctrl-C or SIGTERM: the MLflow run ends KILLED with the reason as a
  tag, the resume state stays, a line says how to go on, and the exit status is 130
  (SIGINT) or 143 (SIGTERM).

It imports nothing heavy: ``kedro --help`` and ``kedro run --help`` stay fast.
"""

from __future__ import annotations

import logging
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from convnets import stopping
from convnets.durability.lock import ProjectLock
from convnets.errors import UserError
from convnets.failures import environment_failure

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 2


@click.group(name="convnets")
def cli() -> None:
    """The project's commands (Kedro's, with ``run`` replaced)."""


def _expected(error: BaseException) -> BaseException | None:
    """The user-facing error in ``error``'s chain of causes (``raise ... from``), if it is
    one a user is expected to make; an error raised while handling one is not."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, UserError):
            return error
        error = error.__cause__
    return None


def _environment_failure(
    error: BaseException, project_path: Path, pipelines: list[str], env: str | None
) -> str | None:
    """``failures.environment_failure`` with this command as the one to run again."""
    return environment_failure(error, project_path, pipelines, env, _command_line())


def _message(error: BaseException, top: BaseException) -> str:
    text = str(error)
    if isinstance(top, DatasetError) and error is not top and text in str(top):
        return str(top)  # Kedro's wrapper adds which catalog entry failed
    return text


def _end_mlflow_runs(status: str, killed_reason: str | None = None) -> str | None:
    """``hooks.end_active_run``, when MLflow was imported: a run may then be open."""
    if "mlflow" not in sys.modules:
        return None
    from convnets.hooks import end_active_run  # noqa: PLC0415

    return end_active_run(status, killed_reason)


def _check_not_busy(project_path: Path) -> None:
    """Refuse at once when another run holds the folder (the hook takes the real lock)."""
    lock = ProjectLock(project_path / "data")
    lock.acquire([])
    lock.release()


def _command_line(args: list[str] | None = None) -> str:
    args = sys.argv[1:] if args is None else args
    if Path(sys.argv[0]).stem != "kedro":  # python -m convnets ...
        return "python -m convnets " + shlex.join(args)
    return "kedro " + shlex.join(args) if args else "kedro run"


def _command_with(option: str, value: str, short: str | None = None) -> str:
    """This command with ``option=value`` in place of the option's values given."""
    args, kept, skip = sys.argv[1:], [], False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in (option, short):
            skip = "=" not in arg  # --env quick: the value is the next argument
            continue
        kept.append(arg)
    return _command_line([*kept, f"{option}={value}"])


def _check_conf(project_path: Path, kwargs: dict[str, Any]) -> None:
    """The run's configuration (``config.check.check_run``), refused before the pipelines,
    TensorFlow and the lock: Kedro would ignore an unknown key, and fail on a missing
    environment or a bad value much later."""
    import os  # noqa: PLC0415

    from convnets.config.check import check_run  # noqa: PLC0415

    conf_source = Path(kwargs.get("conf_source") or project_path / "conf")
    if not conf_source.is_dir():
        return  # an archive: Kedro reads it
    check_run(
        conf_source,
        kwargs.get("env") or os.environ.get("KEDRO_ENV"),
        kwargs.get("params"),
        list(kwargs.get("pipelines") or []),
        _command_with,
    )


def _run(verbose: bool, **kwargs: Any) -> Any:
    context = click.get_current_context()
    project_path = Path(getattr(context.obj, "project_path", None) or Path.cwd())
    previous = {signum: signal.getsignal(signum) for signum in stopping.EXIT_STATUS}
    try:
        _check_conf(project_path, kwargs)
        _check_not_busy(project_path)
        stopping.reset()
        for signum in stopping.EXIT_STATUS:
            # Recorded only; the run stops at its next safe point (convnets.stopping).
            signal.signal(signum, stopping.request)
        result = kedro_run.callback(**kwargs)
        if stopping.requested():
            name = signal.Signals(stopping.requested()).name
            click.secho(
                f"{name} came after the run's last safe point: the run finished.",
                fg="yellow",
                err=True,
            )
        return result
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", None) or stopping.requested() or signal.SIGINT
        name = signal.Signals(signum).name
        run_id = _end_mlflow_runs("KILLED", killed_reason=f"stopped by {name}")
        where = f" (MLflow run {run_id} marked KILLED)" if run_id else ""
        click.secho(
            f"Stopped by {name}{where}. Trained epochs are kept: run the same command "
            f"again to resume: {_command_line()}",
            fg="yellow",
            err=True,
        )
        sys.exit(stopping.EXIT_STATUS[signum])
    except Exception as error:
        _end_mlflow_runs("FAILED")  # MLflow's exit handler would say FINISHED
        cause = _expected(error)
        if cause is not None:
            message = _message(cause, error)
        else:
            pipelines = list(kwargs.get("pipelines") or [])
            message = _environment_failure(error, project_path, pipelines, kwargs.get("env"))
        if message is None or verbose:
            raise
        logger.debug("Stopped by an expected error", exc_info=error)
        click.secho(f"Error: {message}", fg="red", err=True)
        click.secho("(the traceback: add --verbose)", fg="bright_black", err=True)
        sys.exit(EXIT_USER_ERROR)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _params_option(option: click.Parameter) -> click.Parameter:
    """Kedro's ``--params``, with two mistakes it answered badly made one clear message:
    a YAML tag (a ``ConstructorError`` traceback) and a list written with brackets, which
    Kedro splits at its commas ("must contain a key and a value")."""
    if option.name != "params" or option.callback is None:
        return option
    parse = option.callback

    def parse_params(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        import yaml  # noqa: PLC0415

        try:
            return parse(ctx, param, value)
        except yaml.YAMLError as error:  # OmegaConf reads each value as YAML
            raise click.BadParameter(
                f"{value!r} is not plain YAML ({getattr(error, 'problem', None) or error}): "
                "tags such as !!python/... are not read. Give each value as it is: "
                "--params=catdog.training.epochs=30",
                ctx=ctx,
                param=param,
            ) from None
        except click.UsageError:
            if isinstance(value, str) and "[" in value:
                raise click.BadParameter(
                    f"{value!r}: Kedro splits --params at commas, so a list cannot be "
                    "written [180,180]. Write lists with x, as the parameters take them: "
                    "--params=catdog.input.image_size=180x180 (names: space-separated)",
                    ctx=ctx,
                    param=param,
                ) from None
            raise

    option.callback = parse_params
    return option


run = click.Command(
    name="run",
    callback=_run,
    params=[
        *map(_params_option, kedro_run.params),
        click.Option(
            ["--verbose"], is_flag=True, help="Show the full traceback of an expected error."
        ),
    ],
    help=(kedro_run.help or "Run the pipeline.")
    + "\n\nCtrl-C or SIGTERM stops cleanly; the same command resumes training.",
)
cli.add_command(run)
