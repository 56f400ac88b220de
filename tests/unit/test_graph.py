"""builder.graph: StepId contract, image-config round trip, DAG walks, platforms."""

from __future__ import annotations

from builder.graph import (
    BuildPlan,
    Copy,
    Exec,
    HealthConfig,
    ImageConfig,
    ImageSource,
    Mount,
    Platform,
    Stage,
    step_id,
)


def test_step_id_is_stable_and_field_sensitive() -> None:
    base = ImageSource(ref="alpine:3", platform=Platform("linux", "amd64"))
    assert step_id(base) == step_id(ImageSource(ref="alpine:3",
                                                platform=Platform("linux", "amd64")))
    assert step_id(base) != step_id(ImageSource(ref="alpine:3"))
    e = Exec(root=step_id(base), argv=("true",))
    assert step_id(e) != step_id(Exec(root=step_id(base), argv=("true",), cwd="/x"))
    assert step_id(e) == step_id(Exec(root=step_id(base), argv=("true",),
                                      proxy_env=("HTTP_PROXY=x",)))


def test_inputs_include_mount_sources_once() -> None:
    a, b = step_id(ImageSource(ref="a")), step_id(ImageSource(ref="b"))
    e = Exec(root=a, argv=("x",), mounts=(Mount(type="bind", target="/m", source=b),
                                          Mount(type="bind", target="/n", source=b)))
    assert e.inputs == (a, b)
    c = Copy(root=a, source=None, sources=("f",), dest="/")
    assert c.inputs == (a,)


def test_image_config_oci_round_trip() -> None:
    cfg = ImageConfig(env=("PATH=/bin", "A=1=2"), cmd=(), entrypoint=("/e",),
                      working_dir="/w", user="u", labels=(("k", "v"),),
                      exposed_ports=("80/tcp",), volumes=("/v",), stop_signal="SIGINT",
                      healthcheck=HealthConfig(test=("NONE",)), shell=("/bin/sh", "-c"),
                      on_build=("RUN x",), args_escaped=True)
    oci = cfg.to_oci()
    assert oci["Cmd"] == [] and oci["ExposedPorts"] == {"80/tcp": {}}
    assert ImageConfig.from_oci(oci) == cfg
    assert cfg.env_map() == {"PATH": "/bin", "A": "1=2"}
    assert ImageConfig().to_oci() == {}


def test_topological_order_and_edges() -> None:
    img = ImageSource(ref="a")
    i = step_id(img)
    e1 = Exec(root=i, argv=("1",))
    e2 = Exec(root=step_id(e1), argv=("2",))
    steps = {i: img, step_id(e1): e1, step_id(e2): e2}
    st = Stage(index=0, name=None, base="a", base_stage=None, platform=None,
               root=step_id(e2), steps=(step_id(e1), step_id(e2)), config=ImageConfig(),
               history=())
    plan = BuildPlan(stages=(st,), target=0, pruned=(), steps=steps)
    assert plan.topological() == (i, step_id(e1), step_id(e2))
    assert list(plan.edges()) == [(i, step_id(e1)), (step_id(e1), step_id(e2))]


def test_platform_parse_normalises() -> None:
    assert str(Platform.parse("linux/aarch64")) == "linux/arm64"
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64"
    assert str(Platform.parse("linux/arm")) == "linux/arm/v7"
    assert str(Platform.parse("Linux/X86_64")) == "linux/amd64"
    for bad in ("linux", "linux//", "a/b/c/d"):
        try:
            Platform.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
