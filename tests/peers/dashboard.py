#!/usr/bin/env python3
"""Drives the dashboard in headless Chromium (Debian chromium + chromedriver,
through Selenium's WebDriver client) and prints a JSON report.

  dashboard.py URL MQTT_PORT SCREENSHOT
Checks: the page loads and shows "connected" without console errors; a
message published with mosquitto_pub appears in the live tail within a
second; a publish from the form reaches a mosquitto_sub subscriber.
"""
import json
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def wait(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def main():
    url, mqtt_port, shot = sys.argv[1], sys.argv[2], sys.argv[3]
    report = {}
    profile = tempfile.mkdtemp(prefix="switchboard-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-quic", "--window-size=1400,1000", f"--user-data-dir={profile}"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(url)
        status = wait(lambda: "connected" in driver.find_element(By.ID, "status").text, 10)
        report["connected"] = bool(status)
        report["tail_live"] = bool(wait(lambda: "live" in driver.find_element(By.ID, "tailstate").text, 10))
        # A message from a real MQTT client shows up in the live tail.
        t0 = time.monotonic()
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", mqtt_port, "-t", "dash/in", "-m", '{"hello":1}'], check=True)
        seen = wait(lambda: "dash/in" in driver.find_element(By.ID, "tail").text, 5, 0.005)
        report["tail_latency_s"] = round(time.monotonic() - t0, 3) if seen else None
        # The topics table shows it with its value (polled once a second).
        report["topic_listed"] = bool(wait(lambda: '{"hello":1}' in driver.find_element(By.ID, "topics").text, 5))
        # The publish form reaches an MQTT subscriber.
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", mqtt_port, "-t", "commands/#", "-C", "1", "-W", "15", "-v"],
                               stdout=subprocess.PIPE, text=True)
        driver.find_element(By.ID, "pubtopic").send_keys("commands/lamp")
        box = driver.find_element(By.ID, "pubpayload")
        box.clear()
        box.send_keys('{"on": true}')
        got = None
        for _ in range(10):
            driver.find_element(By.ID, "pubbutton").click()
            wait(lambda: "published" in driver.find_element(By.ID, "pubresult").text, 5)
            try:
                got = sub.communicate(timeout=1)[0]
                break
            except subprocess.TimeoutExpired:
                continue
        sub.kill()
        report["form_result"] = driver.find_element(By.ID, "pubresult").text
        report["mqtt_received"] = (got or "").strip()
        driver.save_screenshot(shot)
        logs = driver.get_log("browser")
        report["console_errors"] = [l["message"] for l in logs if l.get("level") == "SEVERE"]
    finally:
        driver.quit()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
