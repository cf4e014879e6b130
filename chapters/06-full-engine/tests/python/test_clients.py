"""The Python docker SDK and testcontainers against the engine at DOCKER_HOST.

Run by tests/python_clients.rs (`cargo test -p chapter-06 --test
python_clients`), which starts an engine with the fixture image, sets
DOCKER_HOST, and runs pytest on this file in the project's venv.
"""

import io
import tarfile
import time
import urllib.request

import docker
import pytest

HTTPD = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && echo ready && exec httpd -f -p 80 -h /www"


@pytest.fixture
def client():
    c = docker.from_env()
    yield c
    for container in c.containers.list(all=True, filters={"label": "sdk-test"}):
        container.remove(force=True)
    c.close()


def test_ping_version_info(client):
    assert client.ping()
    assert client.version()["ApiVersion"] == "1.41"
    info = client.info()
    assert "Containers" in info and "Images" in info
    df = client.df()
    assert df["LayersSize"] > 0 and any("fixture:latest" in i["RepoTags"] for i in df["Images"])


def test_containers_lifecycle(client):
    c = client.containers.run(
        "fixture", "sleep 600", detach=True, name="sdk-box",
        labels={"sdk-test": "1", "tier": "a"}, network_mode="none",
    )
    assert c.status in ("created", "running")
    c.reload()
    assert c.status == "running"
    assert c.labels["tier"] == "a"
    found = client.containers.list(filters={"label": "tier=a"})
    assert [x.name for x in found] == ["sdk-box"]
    assert client.containers.list(filters={"status": "exited", "label": "tier=a"}) == []
    code, out = c.exec_run("sh -c 'echo out; echo err >&2; exit 3'")
    assert code == 3 and b"out" in out and b"err" in out
    code, out = c.exec_run(["cat", "/etc/hostname"], tty=True)
    assert code == 0 and out.strip() == c.id[:12].encode()
    top = c.top()
    assert any("sleep 600" in " ".join(p) for p in top["Processes"])
    c.pause()
    c.reload()
    assert c.status == "paused"
    c.unpause()
    c.rename("sdk-box-2")
    c.reload()
    assert c.name == "sdk-box-2"
    c.restart(timeout=1)
    c.reload()
    assert c.status == "running"
    c.update(mem_limit="64m", memswap_limit="64m")
    assert c.attrs["HostConfig"]["Memory"] in (0, 64 << 20)
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 64 << 20
    c.kill()
    assert c.wait(timeout=10)["StatusCode"] == 137
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("sdk-box-2")


def test_run_logs_and_wait(client):
    out = client.containers.run("fixture", ["sh", "-c", "echo one; echo two >&2"], remove=True,
                                stderr=True, network_mode="none", labels={"sdk-test": "1"})
    # Two pipes: their order against each other is not kept (nor in Docker).
    assert sorted(out.splitlines()) == [b"one", b"two"]
    c = client.containers.run("fixture", ["sh", "-c", "echo line; exit 4"], detach=True,
                              network_mode="none", labels={"sdk-test": "1"})
    assert c.wait()["StatusCode"] == 4
    assert c.logs() == b"line\n"
    assert c.logs(timestamps=True).split(b" ", 1)[1] == b"line\n"
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("fixture", ["sh", "-c", "echo bad >&2; exit 2"], remove=True,
                              network_mode="none", labels={"sdk-test": "1"})
    assert e.value.exit_status == 2


def test_archives_both_ways(client):
    c = client.containers.run("fixture", "sleep 600", detach=True, network_mode="none",
                              labels={"sdk-test": "1"})
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as t:
        body = b"from the sdk\n"
        info = tarfile.TarInfo("dir/file.txt")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    assert c.put_archive("/tmp", data.getvalue())
    assert c.exec_run("cat /tmp/dir/file.txt").output == b"from the sdk\n"
    stream, stat = c.get_archive("/tmp/dir")
    assert stat["name"] == "dir"
    raw = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        assert t.extractfile("dir/file.txt").read() == b"from the sdk\n"
    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/no/such/path")


def test_images(client):
    image = client.images.get("fixture")
    assert "fixture:latest" in image.tags
    image.tag("sdk-copy", "v1")
    assert "sdk-copy:v1" in client.images.get("sdk-copy:v1").tags
    # The one image with that reference, listed with all its tags.
    found = client.images.list(filters={"reference": "sdk-copy"})
    assert [i.id for i in found] == [image.id]
    assert sorted(found[0].tags) == ["fixture:latest", "sdk-copy:v1"]
    assert image.history()
    client.images.remove("sdk-copy:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("sdk-copy:v1")


def test_networks_and_volumes(client):
    net = client.networks.create("sdk-net", labels={"sdk-test": "1"})
    try:
        assert client.networks.list(names=["sdk-net"])[0].id == net.id
        assert net.attrs["Labels"] == {"sdk-test": "1"}
        vol = client.volumes.create("sdk-vol", labels={"sdk-test": "1"})
        out = client.containers.run(
            "fixture", ["sh", "-c", "echo kept > /v/f && cat /v/f"], remove=True,
            network="sdk-net", volumes={"sdk-vol": {"bind": "/v", "mode": "rw"}},
            labels={"sdk-test": "1"},
        )
        assert out == b"kept\n"
        assert [v.name for v in client.volumes.list(filters={"name": "sdk-vol"})] == ["sdk-vol"]
        vol.remove()
    finally:
        net.remove()


def test_events(client):
    since = time.time()
    client.containers.run("fixture", "true", remove=True, network_mode="none",
                          labels={"sdk-test": "1"}, name="sdk-ev")
    until = time.time() + 0.5
    events = list(client.events(since=since, until=until, decode=True,
                                filters={"container": "sdk-ev"}))
    actions = [e["Action"] for e in events]
    for action in ("create", "start", "die", "destroy"):
        assert action in actions, actions


def test_testcontainers_waits_for_a_log_line_and_reaches_the_port():
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    with DockerContainer("fixture").with_command(["sh", "-c", HTTPD]).with_exposed_ports(80) as c:
        wait_for_logs(c, "ready", timeout=20)
        host = c.get_container_host_ip()
        port = c.get_exposed_port(80)
        deadline = time.time() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        assert body.startswith("hello-from-"), body
