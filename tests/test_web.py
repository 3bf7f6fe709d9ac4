"""The web page in headless Chromium (Debian's package, driven by Playwright): upload a generated
clip, see the timeline, take a screenshot and check what it shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

from geoengage.datasets import sample_video

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_upload_a_clip_and_see_the_timeline(running_app, tmp_path: Path) -> None:
    clip = sample_video(tmp_path / "clip.avi", n_frames=120, fps=30.0, absent=(2.0, 2.6))
    shot = tmp_path / "timeline.png"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(running_app.url + "/")
        page.set_input_files("#file", str(clip))
        page.click("#go")
        page.wait_for_selector("body[data-state]", timeout=120_000)
        assert page.get_attribute("body", "data-state") == "done", page.inner_text("#status")
        n_windows = page.locator("svg#engagement rect.window").count()
        rows = page.locator("#windows tbody tr").count()
        summary = page.inner_text("#summary")
        gaze_lines = [page.locator("svg#gaze path").nth(k).get_attribute("stroke")
                      for k in range(page.locator("svg#gaze path").count())]
        page.locator("svg#engagement rect.window").first.click()
        selected = page.locator("#windows tbody tr.selected").count()
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert {"#1f77b4", "#ff7f0e"} <= set(gaze_lines)  # the geometric and the CNN's gaze are both drawn
    assert n_windows == rows == 3  # 4 s at 2 s windows, 1 s step
    assert selected == 1  # clicking a window picks out its row and reasons
    assert "video: 40 frames analysed" in summary and "1 face track(s)" in summary  # leaves, comes back: one person
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] == 1100
    green = (image[:, :, 1].astype(int) - image[:, :, 2].astype(int) > 40) & (image[:, :, 1] > 100)
    assert green.sum() > 2000  # the engagement bars are drawn
    lanes = (image.min(axis=2) < 200).mean(axis=1)
    assert (lanes > 0.02).sum() > 300  # four lanes of curves and a table, not an empty page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_image_card_errors_in_words_and_a_fresh_page_per_upload(running_app, tmp_path: Path, astronaut) -> None:
    cv2.imwrite(str(tmp_path / "face.jpg"), astronaut)
    (tmp_path / "notes.jpg").write_bytes(b"just some text, not a picture at all")
    # the page's fetch of /predict returns the service's answer with one feature marked outside the training range,
    # as a far-off face's would be (the astronaut is inside it: the flagging itself is tested in test_model_api);
    # the real answer's list is kept in window.served (Playwright cannot re-send an intercepted file upload)
    mark_out_of_range = """
        const original = window.fetch;
        window.served = [];
        window.fetch = async (...args) => {
            const response = await original(...args);
            if (!String(args[0]).startsWith("predict") || !response.ok) return response;
            const body = await response.json();
            if (body.faces && body.faces.length) {
                window.served.push(body.faces[0].out_of_range);
                body.faces[0].out_of_range = ["roll_deg__mean"];
                body.faces[0].out_of_range_text = ["mean head roll (deg) 48.0"];
            }
            return new Response(JSON.stringify(body), {status: response.status,
                                                       headers: {"content-type": "application/json"}});
        };
    """
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.add_init_script(mark_out_of_range)
        page.goto(running_app.url + "/")
        page.wait_for_function("document.getElementById('limits').textContent.length > 0")
        limits = page.inner_text("#limits")
        page.set_input_files("#file", str(tmp_path / "face.jpg"))
        page.click("#go")
        page.wait_for_selector("body[data-state]", timeout=120_000)
        card, timeline_hidden = page.inner_text("#card"), page.is_hidden("#timeline")
        served = page.evaluate("window.served")
        page.set_input_files("#file", str(tmp_path / "notes.jpg"))
        page.click("#go")
        page.wait_for_selector("body[data-state='error']", timeout=60_000)
        error, result_hidden, enabled = page.inner_text("#status"), page.is_hidden("#result"), page.is_enabled("#go")
        browser.close()
    assert "uploads up to 8" in limits and "megapixels" in limits
    assert timeline_hidden and "Engagement probability" in card and "expression" in card
    assert served == [["gaze_cnn_pitch_deg__median"]]  # the astronaut's gaze pitch: past v09's training range
    assert "Outside what the model saw in training" in card and "mean head roll (deg) 48.0" in card
    assert error.startswith("Error: ") and "not an image or video" in error  # the service's sentence, not JSON
    assert result_hidden and enabled  # the image's card went with the new upload; the button is back
