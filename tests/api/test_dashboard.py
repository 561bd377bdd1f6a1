"""The web dashboard (`/ui`) in a real browser: Debian's Chromium driven by Selenium through Debian's
chromedriver, against a real service (with its live event stream) and a real pool of local nodes.

Screenshots of each page are saved under the pytest temporary directory (removed at the end of a run as root),
or in BATCHYARD_DASHBOARD_SCREENSHOTS when it names a directory to keep them in; the path is printed.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import models as m

from tests.api.helpers import create_job, create_pool, idle_nodes
from tests.conftest import Service, make_client, start_service, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps dialling out, which this closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]
# A well-formed key of the right length that is not the account's.
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk9PQ=="
POOL = "ui-pool"
# An account of the test's own (not the well-known development one, whose key the service prints at start):
# its key must appear nowhere in the service's output.
ACCOUNT = "dashboardaccount"
ACCOUNT_KEY = base64.b64encode(secrets.token_bytes(64)).decode()


def state_of(value: Any) -> str:
    return str(getattr(value, "value", value))


@pytest.fixture(scope="module")
def ui_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    key_file = tmp_path_factory.mktemp("dashboard-key") / "key"
    key_file.write_text(ACCOUNT_KEY + "\n")
    svc = start_service(
        tmp_path_factory.mktemp("dashboard"),
        "--account-name",
        ACCOUNT,
        "--account-key-file",
        str(key_file),
        "--diagnostic-logs",
        "stream",
    )
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def ui_client(ui_service: Service) -> Any:
    client = make_client(ui_service.url, ACCOUNT_KEY, ACCOUNT)
    create_pool(client, POOL, nodes=2)
    wait_for(lambda: idle_nodes(client, POOL, 2), timeout=60, what="two idle nodes")
    return client


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("BATCHYARD_DASHBOARD_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser(ui_service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The browser (set up after the service, so closed before it: its event stream is open until then)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: scripts/test.sh installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    # The driver's path is given, so Selenium never looks for (or downloads) one.
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def until(driver: Any, check: Callable[[Any], Any], what: str, timeout: float = 30) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(check)
    except TimeoutException:
        page = driver.execute_script("return document.body.innerText")
        raise AssertionError(f"timed out waiting for {what}; the page shows:\n{page}") from None


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def text(driver: Any, selector: str) -> str:
    """The text of the first element the selector finds ("" while there is none: the view is still drawing)."""
    # Read in the page in one step: views redraw parts live, which leaves an element found earlier stale.
    return str(driver.execute_script('return document.querySelector(arguments[0])?.innerText ?? ""', selector))


def sign_in(driver: Any, service: Service, key: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{service.url}/ui")
    field = until(driver, lambda d: next(iter(css(d, "#account-key")), None), "the sign-in form")
    field.send_keys(key + Keys.ENTER)  # by keyboard: the form submits on Enter


@pytest.fixture
def signed_in(browser: Any, ui_service: Service, ui_client: Any) -> Any:
    browser.get(f"{ui_service.url}/ui")
    until(browser, lambda d: css(d, "#account-key") or css(d, "#nav:not([hidden])"), "the page")
    if css(browser, "#account-key"):
        sign_in(browser, ui_service, ACCOUNT_KEY)
        until(browser, lambda d: css(d, "#nav:not([hidden])"), "the signed-in page")
    until(browser, lambda d: css(d, "#live[data-mode=events]"), "the live event stream")
    return browser


def go(driver: Any, fragment: str) -> None:
    """Open a view the way a user follows a link: the document stays, only the fragment changes."""
    driver.execute_script("location.hash = arguments[0]", fragment)


def mark_document(driver: Any) -> None:
    """A property that lives as long as this document: a reload would lose it."""
    driver.execute_script("window.__notReloaded = true")


def not_reloaded(driver: Any) -> bool:
    return bool(driver.execute_script("return window.__notReloaded === true"))


def test_a_wrong_key_is_refused_and_no_key_reaches_the_access_log(
    browser: Any, ui_service: Service, ui_client: Any, shots: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, ui_service, WRONG_KEY)
    status = until(browser, lambda d: next(iter(css(d, "#sign-in-status.error")), None), "the refusal")
    assert "not one of this account's keys" in status.text
    assert css(browser, "#nav[hidden]") and not browser.get_cookies()
    browser.save_screenshot(str(shots / "sign-in-refused.png"))

    sign_in(browser, ui_service, ACCOUNT_KEY)
    until(browser, lambda d: css(d, "#nav:not([hidden])"), "the signed-in page")
    (cookie,) = browser.get_cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert ACCOUNT_KEY not in cookie["value"]
    assert browser.execute_script("return document.cookie") == ""  # out of the page's scripts' reach

    # Without the session the proxy refuses, and a change needs the dashboard's header as well.
    anonymous = httpx.get(f"{ui_service.url}/ui/api/pools?api-version=2025-06-01")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "AuthenticationFailed"
    cookies = {cookie["name"]: cookie["value"]}
    forged = httpx.post(f"{ui_service.url}/ui/api/pools/{POOL}/resize?api-version=2025-06-01", cookies=cookies, json={})
    assert forged.status_code == 403 and forged.json()["code"] == "AuthenticationFailed"

    log = ui_service.log()
    assert "POST /ui/session 403" in log and "POST /ui/session 204" in log  # the sign-ins were logged...
    assert ACCOUNT_KEY not in log and WRONG_KEY not in log  # ...without the keys
    assert ACCOUNT_KEY not in browser.current_url


def test_the_heat_map_shows_the_nodes_real_states_and_follows_them_live(
    signed_in: Any, ui_client: Any, ui_service: Service, shots: Path, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    driver = signed_in
    go(driver, f"#/pools/{POOL}")
    tiles = until(driver, lambda d: len(css(d, ".heatmap .tile")) == 2 and css(d, ".heatmap .tile"), "two tiles")
    real = {node.id: state_of(node.state) for node in ui_client.list_nodes(POOL)}
    assert {tile.get_attribute("data-node"): tile.get_attribute("data-state") for tile in tiles} == real
    assert set(real.values()) == {"idle"}
    assert tiles[0].value_of_css_property("background-color") == "rgba(237, 238, 242, 1)"  # Batch Explorer's idle

    # A task starts on one node: its tile turns running (Batch Explorer's green) without a reload.
    mark_document(driver)
    job_id, gate = unique("ui-heat"), tmp_path / "gate"
    create_job(ui_client, job_id, POOL)
    ui_client.create_task(job_id, m.BatchTaskCreateOptions(id="hold", command_line=wait_for_file(gate)))
    running = until(driver, lambda d: css(d, ".heatmap .tile[data-state=running]"), "a running tile")
    task = wait_for(lambda: ui_client.get_task(job_id, "hold").node_info, what="the task's node")
    assert [tile.get_attribute("data-node") for tile in running] == [task.node_id]
    assert running[0].value_of_css_property("background-color") == "rgba(56, 142, 60, 1)"
    driver.save_screenshot(str(shots / "pool-heat-map.png"))
    gate.touch()
    until(driver, lambda d: len(css(d, ".heatmap .tile[data-state=idle]")) == 2, "both tiles idle again")
    assert not_reloaded(driver)

    # The autoscale box evaluates a formula against the pool and lists every variable.
    formula = css(driver, "#autoscale-formula")[0]
    formula.clear()
    formula.send_keys("$TargetDedicatedNodes = $CurrentDedicatedNodes + 1;")
    css(driver, "#autoscale-evaluate")[0].click()
    until(driver, lambda d: css(d, "#autoscale-variables tbody tr"), "the evaluated variables")
    results = text(driver, "#autoscale-result pre.results")
    assert "$TargetDedicatedNodes=3" in results
    variables = set(text(driver, "#autoscale-variables tbody").split())
    assert {"$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption"} <= variables
    statements = css(driver, "#autoscale-statements tbody tr")
    assert "$CurrentDedicatedNodes + 1" in statements[0].text and statements[0].text.endswith("3")
    driver.save_screenshot(str(shots / "pool-autoscale.png"))

    # Resize from the form: a third node joins the heat map, then leaves it.
    for target in (3, 2):
        field = css(driver, "#resize-dedicated")[0]
        field.clear()
        field.send_keys(str(target))
        field.submit()
        until(driver, lambda d: "Resize started." in text(d, "#resize-status"), f"the resize to {target}")
        assert ui_client.get_pool(POOL).target_dedicated_nodes == target
        until(driver, lambda d, n=target: len(css(d, ".heatmap .tile[data-state=idle]")) == n, f"{target} idle tiles")
    until(driver, lambda d: len(css(d, ".heatmap .tile")) == 2, "the third node gone from the heat map", timeout=60)

    # By keyboard: a tile is a link, Enter on it opens its node's page.
    from selenium.webdriver.common.keys import Keys

    node_id = sorted(real)[0]
    css(driver, f".heatmap .tile[data-node='{node_id}']")[0].send_keys(Keys.ENTER)
    until(driver, lambda d: text(d, "h1") == f"Node {node_id}", "the node's page, opened by keyboard")


def wait_for_file(gate: Path) -> str:
    return f"/bin/sh -c 'while [ ! -e {gate} ]; do sleep 0.1; done'"


def test_a_task_page_tails_its_real_stdout_and_shows_completion_without_a_reload(
    signed_in: Any, ui_client: Any, shots: Path, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    driver = signed_in
    job_id, gate = unique("ui-task"), tmp_path / "gate"
    create_job(ui_client, job_id, POOL)
    command = (
        f"/bin/sh -c 'echo first line from {job_id}; while [ ! -e {gate} ]; do sleep 0.1; done; "
        f"echo last line from {job_id}; echo to stderr >&2; exit 3'"
    )
    # one retry: the first run fails once the gate opens, the second fails at once
    retry_once = m.BatchTaskConstraints(max_task_retry_count=1)
    ui_client.create_task(job_id, m.BatchTaskCreateOptions(id="t1", command_line=command, constraints=retry_once))
    wait_for(lambda: state_of(ui_client.get_task(job_id, "t1").state) == "running", what="the task running")

    go(driver, f"#/jobs/{job_id}/tasks/t1")
    until(driver, lambda d: f"first line from {job_id}" in text(d, "#task-stdout"), "the task's stdout")
    assert text(driver, "#task-state") == "running"
    mark_document(driver)
    gate.touch()
    until(driver, lambda d: text(d, "#task-state") == "completed", "the completed state")
    until(driver, lambda d: f"last line from {job_id}" in text(d, "#task-stdout"), "the stdout's last line")
    assert text(driver, "#task-exit-code") == "3"
    assert "FailureExitCode" in text(driver, "#task-failure")  # a non-zero exit code is a task failure
    assert not_reloaded(driver)
    # The state history the service kept: created, each run, the retry between them, the end.
    rows = (
        "return [...document.querySelectorAll('#task-history-table tbody tr[data-state]')].map((r) => r.dataset.state)"
    )
    assert driver.execute_script(rows) == ["active", "running", "active", "running", "completed"]
    retry = css(driver, "#task-history-table tbody tr[data-state]")[2]
    assert retry.text.split()[-3:] == ["1", "0", "retry"]  # retries, requeues, why it went back to active
    times = [cell.get_attribute("datetime") for cell in css(driver, "#task-history-table tbody tr[data-state] time")]
    assert times == sorted(times)
    assert datetime.fromisoformat(times[-1]) == ui_client.get_task(job_id, "t1").state_transition_time
    stdout = ui_client.download_task_file(job_id, "t1", "stdout.txt")
    assert text(driver, "#task-stdout").strip() == b"".join(stdout).decode().strip()
    driver.save_screenshot(str(shots / "task.png"))

    css(driver, "button.tab[data-file='stderr.txt']")[0].click()
    until(driver, lambda d: "to stderr" in text(d, "#task-stderr"), "the task's stderr")

    # The events view holds the stream's records since the document was opened: this task's among them.
    go(driver, "#/events")
    until(driver, lambda d: job_id in text(d, "#event-rows tr[data-operation=TaskFailEvent]"), "the task's fail event")
    driver.save_screenshot(str(shots / "events.png"))


def test_a_jobs_tasks_are_paged_and_filtered_by_the_service(
    signed_in: Any, ui_client: Any, shots: Path, unique: Callable[[str], str]
) -> None:
    driver = signed_in
    job_id = unique("ui-list")
    create_job(ui_client, job_id, POOL)
    tasks = [m.BatchTaskCreateOptions(id=f"task-{n:02d}", command_line="/bin/true") for n in range(30)]
    ui_client.create_task_collection(job_id, m.BatchTaskGroup(task_values=tasks))
    wait_for(lambda: ui_client.get_job_task_counts(job_id).task_counts.completed == 30, timeout=60, what="30 done")

    go(driver, "#/")
    until(driver, lambda d: text(d, "h1") == f"Account {ACCOUNT}", "the account overview")
    until(driver, lambda d: POOL in text(d, "main table"), "the pool in the overview's node counts")
    go(driver, "#/jobs")
    row = f"#/jobs/{job_id}"
    until(
        driver,
        lambda d: (
            "30 completed"
            in d.execute_script(
                "return document.querySelector(`a[href='${arguments[0]}']`)?.closest('tr')?.innerText ?? ''", row
            )
        ),
        "the job's progress in the list of jobs",
    )
    driver.save_screenshot(str(shots / "jobs.png"))

    go(driver, f"#/jobs/{job_id}")
    until(driver, lambda d: "30 completed" in text(d, "#job-progress"), "the job's counts")
    until(driver, lambda d: len(css(d, "#task-table tbody tr[data-task]")) == 25, "a first page of 25")
    assert "more on the next page" in text(driver, "#task-page-info")
    css(driver, "#task-next")[0].click()
    until(driver, lambda d: len(css(d, "#task-table tbody tr[data-task]")) == 5, "a second page of 5")
    assert css(driver, "#task-next")[0].get_attribute("disabled") is not None

    field = css(driver, "#task-filter")[0]
    field.send_keys("id eq 'task-07'")
    field.submit()
    shown = "return [...document.querySelectorAll('#task-table tbody tr')].map((row) => row.dataset.task)"
    until(driver, lambda d: d.execute_script(shown) == ["task-07"], "only the task the filter names")
    field.clear()
    field.send_keys("state eq nonsense")
    field.submit()
    until(driver, lambda d: "InvalidQueryParameterValue" in text(d, "#task-table"), "the filter's error")
    driver.save_screenshot(str(shots / "job.png"))


def test_a_nodes_page_lists_its_files_and_recent_tasks(
    signed_in: Any, ui_client: Any, shots: Path, unique: Callable[[str], str]
) -> None:
    driver = signed_in
    job_id = unique("ui-node")
    create_job(ui_client, job_id, POOL)
    ui_client.create_task(job_id, m.BatchTaskCreateOptions(id="n1", command_line="/bin/echo on the node"))
    wait_for(lambda: state_of(ui_client.get_task(job_id, "n1").state) == "completed", what="the task done")
    node_id = ui_client.get_task(job_id, "n1").node_info.node_id

    go(driver, f"#/pools/{POOL}/nodes/{node_id}")
    until(driver, lambda d: job_id in text(d, "#node-recent-tasks"), "the node's recent task")
    path = f"workitems/{job_id}/job-1/n1/stdout.txt"  # where Batch keeps a task's files on its node
    files = {button.text: button for button in css(driver, "#node-files button.linkish")}
    assert path in files, sorted(files)
    files[path].click()
    until(driver, lambda d: "on the node" in text(d, "#node-file"), "the file's content")
    driver.save_screenshot(str(shots / "node.png"))


def test_without_the_event_stream_the_page_polls_and_still_shows_a_completion(
    browser: Any, service: Service, client: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    """The session's shared service runs without diagnostic logs: the stream is refused and the page polls."""
    from batchyard.service.config import DEV_ACCOUNT_KEY

    pool_id, job_id, gate = unique("ui-poll"), unique("ui-poll"), tmp_path / "gate"
    create_pool(client, pool_id, nodes=1)
    create_job(client, job_id, pool_id)
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=wait_for_file(gate)))
    wait_for(lambda: state_of(client.get_task(job_id, "t").state) == "running", timeout=60, what="the task running")
    try:
        sign_in(browser, service, DEV_ACCOUNT_KEY)
        until(browser, lambda d: css(d, "#live[data-mode=polling]"), "the polling mode")
        go(browser, f"#/jobs/{job_id}/tasks/t")
        until(browser, lambda d: text(d, "#task-state") == "running", "the running task")
        mark_document(browser)
        gate.touch()
        until(browser, lambda d: text(d, "#task-state") == "completed", "the completion, polled")
        assert not_reloaded(browser)
    finally:
        client.begin_delete_pool(pool_id, polling_interval=0.2)  # not waited for
        browser.delete_all_cookies()  # cookies are per host, not per port: the other service's tests sign in again
