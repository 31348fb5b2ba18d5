// The web phone: feature phones that drive the simulator's control API (fetch + JSON).
// A phone dials (POST /phones/{msisdn}/dial), replies (/reply) and hangs up (/cancel);
// while no request is in flight it polls GET /phones/{msisdn} so that a screen pushed by
// the network (an invoice prompt) or a dialogue the network ended shows up, and polls
// GET /phones/{msisdn}/sms for its inbox. No build step, no dependencies.
"use strict";

const POLL_SCREEN_MS = 1000;
const POLL_SMS_MS = 2000;
const MAX_LOG = 200; // entries kept per phone
const MAX_PHONES = 8;
const MAX_INPUT = 182; // characters of one USSD string
const STORE_KEY = "ussdloop.webphone.msisdns";
const KEYS = [
  ["1", ""], ["2", "abc"], ["3", "def"],
  ["4", "ghi"], ["5", "jkl"], ["6", "mno"],
  ["7", "pqrs"], ["8", "tuv"], ["9", "wxyz"],
  ["*", ""], ["0", "+"], ["#", ""],
];
const KEY_NAMES = { "*": "star", "#": "hash" };

/** "+256 700-000 001" -> "256700000001"; null unless 5 to 15 digits. */
function normaliseMsisdn(raw) {
  const compact = raw.replace(/[\s\-.()]/g, "");
  const digits = compact.startsWith("+") ? compact.slice(1) : compact;
  return /^\d{5,15}$/.test(digits) ? digits : null;
}

function clockTime(date) {
  return date.toTimeString().slice(0, 8) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function formatElapsed(ms) {
  const tenths = Math.floor(ms / 100);
  const minutes = String(Math.floor(tenths / 600)).padStart(2, "0");
  const seconds = String(Math.floor(tenths / 10) % 60).padStart(2, "0");
  return `${minutes}:${seconds}.${tenths % 10}`;
}

class ControlApiError extends Error {}

async function callApi(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ControlApiError(`${answer.id || response.status}: ${answer.message || response.statusText}`);
  }
  return answer;
}

/** One handset on the page. */
class WebPhone {
  constructor(msisdn, board) {
    this.msisdn = msisdn;
    this.board = board;
    this.state = "idle"; // the handset's state as the network last told: idle | waiting | open
    this.busy = false; // a dial, reply or cancel is in flight
    this.lastView = ""; // the last phone view shown, to spot pushed or ended screens
    this.startedAt = null; // when the current dialogue started (ms), null when none
    this.smsSeen = 0;
    this.element = this.build();
    this.timers = [
      setInterval(() => this.pollScreen(), POLL_SCREEN_MS),
      setInterval(() => this.pollInbox(), POLL_SMS_MS),
      setInterval(() => this.tickStopwatch(), 100),
    ];
    this.pollScreen();
    this.pollInbox();
  }

  get base() {
    return `/phones/${encodeURIComponent(this.msisdn)}`;
  }

  part(testid) {
    return this.element.querySelector(`[data-testid="${testid}"]`);
  }

  build() {
    const element = document.getElementById("phone-template").content.firstElementChild.cloneNode(true);
    element.dataset.msisdn = this.msisdn;
    element.dataset.state = "idle";
    element.setAttribute("aria-label", `Phone ${this.msisdn}`);
    this.element = element;
    this.part("msisdn").value = this.msisdn;
    this.part("screen").textContent = "Dial a short code, e.g. *123#, then press the green key.";
    const keypad = element.querySelector(".keypad");
    for (const [digit, letters] of KEYS) {
      const key = document.createElement("button");
      key.type = "button";
      key.className = "key digit";
      key.dataset.testid = `key-${KEY_NAMES[digit] || digit}`;
      key.setAttribute("aria-label", digit);
      key.append(digit);
      const small = document.createElement("small");
      small.textContent = letters || "\u00a0";
      key.append(small);
      key.addEventListener("click", () => this.type(digit));
      keypad.append(key);
    }
    this.part("call").addEventListener("click", () => this.call());
    this.part("end").addEventListener("click", () => this.end());
    this.part("clear").addEventListener("click", () => this.backspace());
    this.part("remove").addEventListener("click", () => this.board.remove(this.msisdn));
    this.part("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.call();
      if (event.key === "Escape") this.end();
    });
    return element;
  }

  // --- keys -----------------------------------------------------------------------------

  type(character) {
    const input = this.part("input");
    if (input.value.length < MAX_INPUT) input.value += character;
  }

  backspace() {
    const input = this.part("input");
    input.value = input.value.slice(0, -1);
  }

  /** The green key: dial the typed code when idle, send the typed answer when a screen is open. */
  async call() {
    if (this.busy) return;
    const input = this.part("input");
    const text = input.value.trim();
    if (this.state === "open") {
      input.value = "";
      await this.request("reply", { text }, "reply", text);
    } else if (this.state === "idle") {
      if (!text) {
        this.showError("Type a short code first, e.g. *123#");
        return;
      }
      input.value = "";
      this.startedAt = Date.now();
      this.showText(`Calling ${text}\u2026`);
      await this.request("dial", { code: text }, "dial", text);
    }
  }

  /** The red key: end the dialogue, or clear the input line when there is none. */
  async end() {
    if (this.state === "idle" && !this.busy) {
      this.part("input").value = "";
      return;
    }
    await this.request("cancel", {}, "cancel", "");
  }

  // --- talking to the control API --------------------------------------------------------

  async request(action, body, kind, text) {
    this.setBusy(true);
    const sent = Date.now();
    this.log("out", kind, text);
    try {
      const view = await callApi("POST", `${this.base}/${action}`, body);
      this.log("in", `screen (${Date.now() - sent} ms)`, this.describe(view));
      this.show(view);
    } catch (error) {
      this.log("err", "error", error.message);
      this.showError(error.message);
      this.lastView = ""; // show whatever the handset is doing now
      await this.pollScreen(true);
    } finally {
      this.setBusy(false);
    }
  }

  async pollScreen(force = false) {
    if (this.busy && !force) return;
    let view;
    try {
      view = await callApi("GET", this.base);
    } catch (error) {
      return; // the simulator is restarting or gone; the next poll tries again
    }
    if (this.busy && !force) return;
    const key = JSON.stringify(view);
    if (key === this.lastView) return;
    if (!this.lastView && view.state === "idle") {
      this.lastView = key; // a dialogue that ended before the page opened: keep the hint
      return;
    }
    if (this.lastView && view.networkInitiated && view.state === "open" && this.state !== "open") {
      this.startedAt = Date.now();
      this.log("in", "push", this.describe(view));
    } else if (this.lastView && this.state !== "idle" && view.state === "idle") {
      this.log("in", "ended", this.describe(view));
    }
    this.show(view);
  }

  async pollInbox() {
    let inbox;
    try {
      inbox = await callApi("GET", `${this.base}/sms`);
    } catch (error) {
      return;
    }
    const fresh = inbox.sms.filter((sms) => sms.index > this.smsSeen);
    const list = this.part("inbox");
    for (const sms of fresh) {
      const item = document.createElement("li");
      item.dataset.testid = "sms";
      const time = document.createElement("time");
      time.dateTime = sms.receivedAt;
      time.textContent = clockTime(new Date(sms.receivedAt));
      const sender = document.createElement("span");
      sender.className = "sender";
      sender.textContent = sms.sender;
      const text = document.createElement("p");
      text.textContent = sms.text;
      item.append(time, sender, text);
      list.prepend(item); // newest first, as on a phone
      this.smsSeen = sms.index;
    }
    this.part("sms-count").textContent = String(inbox.sms.length);
  }

  // --- what the phone shows --------------------------------------------------------------

  describe(view) {
    if (view.screen) return view.screen;
    return view.endedReason ? `[dialogue ended: ${view.endedReason}]` : "[no screen]";
  }

  show(view) {
    this.lastView = JSON.stringify(view);
    this.state = view.state;
    this.element.dataset.state = view.state;
    this.part("state").textContent = view.expectsReply ? "reply" : view.state;
    if (view.screen !== null || view.endedReason) this.showText(this.describe(view));
    if (view.state === "idle") this.stopStopwatch();
    else if (this.startedAt === null) this.startedAt = Date.now();
  }

  showText(text) {
    const screen = this.part("screen");
    screen.classList.remove("error");
    screen.textContent = text;
    screen.scrollTop = 0;
  }

  showError(message) {
    const screen = this.part("screen");
    screen.classList.add("error");
    screen.textContent = message;
  }

  setBusy(busy) {
    this.busy = busy;
    if (busy) {
      this.state = "waiting";
      this.element.dataset.state = "waiting";
      this.part("state").textContent = "waiting";
    }
    this.part("call").disabled = busy;
  }

  tickStopwatch() {
    if (this.startedAt !== null) {
      this.part("stopwatch").textContent = formatElapsed(Date.now() - this.startedAt);
    }
  }

  stopStopwatch() {
    this.tickStopwatch();
    this.startedAt = null;
  }

  log(direction, kind, text) {
    const list = this.part("log");
    const item = document.createElement("li");
    item.className = direction;
    item.dataset.testid = "log-entry";
    const time = document.createElement("time");
    time.textContent = clockTime(new Date());
    const label = document.createElement("span");
    label.className = "kind";
    label.textContent = { out: "\u2192 ", in: "\u2190 ", err: "! " }[direction] + kind;
    item.append(time, label);
    if (text) {
      const body = document.createElement("pre");
      body.textContent = text;
      item.append(body);
    }
    list.append(item);
    while (list.children.length > MAX_LOG) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  dispose() {
    this.timers.forEach(clearInterval);
    this.element.remove();
  }
}

/** The phones side by side; the list is kept in the address (?phones=) and localStorage. */
class Board {
  constructor(container) {
    this.container = container;
    this.phones = new Map();
  }

  add(raw) {
    const msisdn = normaliseMsisdn(raw);
    if (msisdn === null) return "A phone number is 5 to 15 digits, with an optional +";
    if (this.phones.has(msisdn)) return `${msisdn} is already here`;
    if (this.phones.size >= MAX_PHONES) return `At most ${MAX_PHONES} phones`;
    const phone = new WebPhone(msisdn, this);
    this.phones.set(msisdn, phone);
    this.container.append(phone.element);
    this.remember();
    return "";
  }

  remove(msisdn) {
    const phone = this.phones.get(msisdn);
    if (phone === undefined) return;
    phone.dispose();
    this.phones.delete(msisdn);
    this.remember();
  }

  remember() {
    const msisdns = [...this.phones.keys()];
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(msisdns));
    } catch (error) {
      // private mode: the list is only in the address
    }
    const url = new URL(window.location.href);
    if (msisdns.length) url.searchParams.set("phones", msisdns.join(","));
    else url.searchParams.delete("phones");
    window.history.replaceState(null, "", url);
  }

  restore() {
    const fromUrl = new URL(window.location.href).searchParams.get("phones");
    let msisdns = fromUrl ? fromUrl.split(",") : [];
    if (!fromUrl) {
      try {
        msisdns = JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
      } catch (error) {
        msisdns = [];
      }
    }
    msisdns.forEach((msisdn) => this.add(String(msisdn)));
  }
}

function main() {
  const board = new Board(document.getElementById("phones"));
  const form = document.getElementById("add-phone");
  const field = document.getElementById("add-msisdn");
  const error = document.getElementById("add-error");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = board.add(field.value);
    if (!error.textContent) field.value = "";
  });
  board.restore();
  window.webPhones = board; // for the console
}

main();
