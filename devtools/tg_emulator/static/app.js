// The sandbox page: plays a Telegram user through the emulator's /control/ API (same origin).
// Polls every 500 ms; bot texts become DOM nodes (never innerHTML), so nothing a bot sends can run here.
"use strict";

const POLL_MS = 500;
const ANSWER_WAIT_MS = 15000; // the emulator's default callback_ttl: after that no answer can come
const ROLE_STAFF = /staff|horeca/i;
// Telegram entities rendered as markup: the tags Telegram's HTML parse mode allows; others stay plain text.
const ENTITY_TAGS = {bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre", text_link: "a", date_time: "time"};
const SAFE_URL = /^(https?:|tg:|mailto:)/i;
// A bot's deep link, pasted or clicked: Telegram opens the bot it names and sends /start <parameter> there.
const DEEP_LINK = /^(?:https?:\/\/)?(?:t|telegram)\.me\/[A-Za-z][A-Za-z0-9_]{2,63}\/?(?:\?start=[A-Za-z0-9_-]{1,64})?$/;
// Bare links in a message's text, shown as links the way Telegram detects them.
const BARE_LINK = /\b(?:https?:\/\/[^\s<>"]+|(?:t|telegram)\.me\/[A-Za-z0-9_]+(?:\?start=[A-Za-z0-9_-]+)?)/g;

const $ = (id) => document.getElementById(id);
const state = {
  bots: [],          // [{id, username, configured}]
  users: [],         // [{id, first_name, language_code, deactivated, ...}]
  userId: null,
  bot: null,         // username of the open chat
  chats: {},         // username -> message records of the current user's chat
  unread: {},        // username -> the emulator's count of the current user's unread messages from that bot
  read: {},          // username -> newest message id we told the emulator the user has seen
  keyboard: null,    // the reply keyboard under the open chat's input field (ReplyKeyboardMarkup), or null
  blocked: false,
  pending: new Map(), // callback_query_id -> {bot, messageId, data, since}
  rendered: "",
  stick: true,       // the chat is scrolled to the bottom: keep it there as messages come and the window resizes
  ticks: 0,
};

// ------------------------------------------------------------------ control API

async function control(method, path, body) {
  const options = {method, headers: {}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/control/" + path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || data.description || `HTTP ${response.status}`);
  return data;
}

const query = (params) => new URLSearchParams(params).toString();

// ------------------------------------------------------------------ rendering of bot texts

/** plain_text + entities (UTF-16 offsets, like JS strings) as DOM nodes. */
function renderText(text, entities) {
  const list = (entities || [])
    .filter((e) => ENTITY_TAGS[e.type] && e.length > 0)
    .map((e) => ({...e, end: e.offset + e.length}));
  const fragment = document.createDocumentFragment();
  build(fragment, text, 0, text.length, sortEntities(list));
  return fragment;
}

function sortEntities(list) {
  return list.sort((a, b) => a.offset - b.offset || b.end - a.end);
}

function build(parent, text, start, end, entities) {
  let pos = start;
  let rest = entities;
  while (rest.length) {
    const [e, ...others] = rest;
    const from = Math.max(e.offset, pos);
    const to = Math.min(e.end, end);
    if (from >= to) { rest = others; continue; }
    if (from > pos) appendText(parent, text.slice(pos, from));
    const inner = others.filter((o) => o.offset < to);
    const after = others.filter((o) => o.offset >= to);
    const element = entityElement(e);
    const when = e.type === "date_time" ? localTime(e) : null;
    if (when) element.append(when);  // as a Telegram app shows it: in this browser's own time
    else build(element, text, from, to, inner);
    parent.append(element);
    pos = to;
    // An entity crossing this one's end (not possible from HTML, possible from raw entities) goes on after it.
    const crossing = inner.filter((o) => o.end > to).map((o) => ({...o, offset: to}));
    rest = sortEntities([...crossing, ...after]);
  }
  if (pos < end) appendText(parent, text.slice(pos, end));
}

/** Plain text, its bare links (https://…, t.me/…) made links as Telegram shows them. */
function appendText(parent, text) {
  let pos = 0;
  for (const match of text.matchAll(BARE_LINK)) {
    const url = match[0].replace(/[.,;:!?)]+$/, "");
    if (match.index > pos) parent.append(text.slice(pos, match.index));
    parent.append(linkElement(/^https?:/i.test(url) ? url : "https://" + url, url));
    pos = match.index + url.length;
  }
  if (pos < text.length) parent.append(text.slice(pos));
}

function linkElement(url, text) {
  const element = entityElement({type: "text_link", url});
  element.append(text);
  return element;
}

/** A date_time entity's time in this browser's timezone, per its date_time_format; null: show the text as sent. */
function localTime(entity) {
  const format = entity.date_time_format || "";
  if (!format || typeof entity.unix_time !== "number") return null;
  const date = new Date(entity.unix_time * 1000);
  if (format === "r") {
    const minutes = Math.round((date - Date.now()) / 60000);
    return new Intl.RelativeTimeFormat(undefined, {numeric: "auto"}).format(minutes, "minute");
  }
  const options = {};
  if (format.includes("w")) options.weekday = "long";
  if (format.includes("d")) Object.assign(options, {day: "2-digit", month: "2-digit", year: "2-digit"});
  if (format.includes("D")) Object.assign(options, {day: "numeric", month: "long", year: "numeric"});
  if (format.includes("t")) Object.assign(options, {hour: "2-digit", minute: "2-digit"});
  if (format.includes("T")) Object.assign(options, {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  return date.toLocaleString(undefined, options);
}

function entityElement(entity) {
  const element = document.createElement(ENTITY_TAGS[entity.type]);
  if (entity.type === "date_time" && typeof entity.unix_time === "number") {
    element.dateTime = new Date(entity.unix_time * 1000).toISOString();
    element.title = "date_time entity: shown in this browser's time";
  }
  if (entity.type === "text_link") {
    if (entity.url && SAFE_URL.test(entity.url)) {
      element.href = entity.url;
      element.target = "_blank";
      element.rel = "noopener noreferrer";
      element.title = entity.url;
    } else {
      element.title = "link not opened by the sandbox: " + (entity.url || "no url");
    }
  }
  return element;
}

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

function clock(unix) {
  const d = new Date(unix * 1000);
  return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

const isStaff = (username) => ROLE_STAFF.test(username || "");
const roleOf = (bot) => (!bot.configured ? "bot" : isStaff(bot.username) ? "staff bot (HoReCa)" : "customer bot");
const currentUser = () => state.users.find((u) => u.id === state.userId) || null;
const lastBotMessageId = (records) => records.filter((m) => m.from === "bot").reduce((n, m) => Math.max(n, m.message_id), 0);

let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 3500);
}

function showAlert(from, text) {
  $("alert-from").textContent = from;
  $("alert-text").textContent = text;
  $("alert-dialog").hidden = false;
  $("alert-ok").focus();
}

function remember() {
  const url = new URL(location.href);
  if (state.userId) url.searchParams.set("user", state.userId); else url.searchParams.delete("user");
  if (state.bot) url.searchParams.set("bot", state.bot); else url.searchParams.delete("bot");
  history.replaceState(null, "", url);
  localStorage.setItem("tg-sandbox", JSON.stringify({user: state.userId, bot: state.bot}));
}

// ------------------------------------------------------------------ loading

async function loadBots() {
  state.bots = (await control("GET", "bots")).sort((a, b) => (b.configured - a.configured) || isStaff(a.username) - isStaff(b.username));
  if (!state.bots.some((b) => b.username === state.bot)) state.bot = state.bots.length ? state.bots[0].username : null;
}

async function loadUsers() {
  state.users = await control("GET", "users");
  // The user we play is gone (POST /control/reset): back to "pick a user", not to a chat nobody is in.
  if (state.userId && !currentUser()) {
    selectUser(null);
    $("new-user").open = true;
  }
}

async function loadChats() {
  if (!state.userId) { state.chats = {}; return; }
  const userId = state.userId;
  const results = await Promise.all(state.bots.map((b) => control("GET", "chat?" + query({bot: b.username, chat_id: userId}))));
  if (userId !== state.userId) return; // the user was switched meanwhile
  state.bots.forEach((b, i) => { state.chats[b.username] = results[i]; });
  if (state.bot) {
    // The open chat is read: tell the emulator, which keeps the unread counts (per user, like Telegram).
    const newest = lastBotMessageId(state.chats[state.bot] || []);
    if (newest > (state.read[state.bot] || 0)) {
      await control("POST", "read", {bot: state.bot, user_id: userId});
      state.read[state.bot] = newest;
    }
    const [answer, keyboard] = await Promise.all([
      control("GET", "blocked?" + query({bot: state.bot, user_id: userId})),
      control("GET", "keyboard?" + query({bot: state.bot, chat_id: userId})),
    ]);
    state.blocked = answer.blocked;
    state.keyboard = keyboard.keyboard;
  }
  const unread = await control("GET", "unread?" + query({user_id: userId}));
  if (userId === state.userId) state.unread = unread;
}

/** Answers to our button presses: a toast, or an alert when the bot asked for show_alert. */
async function loadAnswers() {
  for (const [id, press] of [...state.pending]) {
    const answers = await control("GET", "callback_answers?" + query({bot: press.bot, callback_query_id: id}));
    if (answers.length) {
      state.pending.delete(id);
      const answer = answers[0];
      if (answer.text && answer.show_alert) showAlert("@" + press.bot, answer.text);
      else if (answer.text) toast(answer.text);
      else if (answer.url) toast("The bot wants to open " + answer.url);
    } else if (Date.now() - press.since > ANSWER_WAIT_MS) {
      state.pending.delete(id);
      toast("The bot did not answer the button press (no answerCallbackQuery).");
    }
  }
}

async function tick() {
  try {
    await (state.ticks % 10 === 0 ? Promise.all([loadBots(), loadUsers()]) : loadUsers());
    await loadChats();
    await loadAnswers();
    setConnection(true);
    render();
  } catch (error) {
    setConnection(false, error.message);
  } finally {
    state.ticks += 1;
    setTimeout(tick, POLL_MS);
  }
}

function setConnection(ok, why) {
  const badge = $("connection");
  badge.dataset.state = ok ? "ok" : "down";
  badge.textContent = ok ? "connected" : "emulator unreachable";
  badge.title = ok ? "the emulator's control API answers" : why || "";
}

// ------------------------------------------------------------------ view

function render() {
  renderUsers();
  renderTabs();
  renderHeader();
  renderMessages();
  renderReplyKeyboard();
}

function renderUsers() {
  const select = $("user-select");
  const wanted = state.users.map((u) => `${u.id}|${u.first_name}|${u.language_code}|${u.deactivated}`).join(",") + "#" + state.userId;
  if (select.dataset.key === wanted) return;
  select.dataset.key = wanted;
  select.replaceChildren(el("option", {value: ""}, "— pick a user —"));
  for (const u of state.users) {
    const label = `${u.first_name} · ${u.id}${u.language_code ? " · " + u.language_code : ""}${u.deactivated ? " (deactivated)" : ""}`;
    select.append(el("option", {value: u.id, selected: u.id === state.userId}, label));
  }
}

function renderTabs() {
  const nav = $("bot-tabs");
  const key = JSON.stringify(state.bots.map((b) => [b.username, b.username === state.bot, unread(b.username)]));
  if (nav.dataset.key === key) return;
  nav.dataset.key = key;
  nav.replaceChildren();
  if (!state.bots.length) {
    nav.append(el("p", {className: "hint"}, "No bots configured. Start the emulator with --bot NAME=TOKEN."));
    return;
  }
  for (const bot of state.bots) {
    const active = bot.username === state.bot;
    const count = unread(bot.username);
    nav.append(el("button", {
      type: "button", role: "tab", className: "chat-tab" + (active ? " active" : ""),
      "aria-selected": active ? "true" : "false", "data-testid": "bot-tab", dataset: {bot: bot.username},
      onclick: () => openBot(bot.username),
    },
    el("span", {className: "avatar " + (isStaff(bot.username) ? "staff" : "customer"), "aria-hidden": "true"}, bot.username[0].toUpperCase()),
    el("span", {className: "tab-text"},
      el("span", {className: "tab-name"}, "@" + bot.username),
      el("span", {className: "tab-role"}, roleOf(bot))),
    count ? el("span", {className: "badge", "data-testid": "unread-badge"}, String(count)) : null));
  }
}

function unread(username) {
  return username === state.bot ? 0 : state.unread[username] || 0;
}

function renderHeader() {
  const bot = state.bots.find((b) => b.username === state.bot);
  const user = currentUser();
  $("chat-title").textContent = bot ? "@" + bot.username : "No bot";
  $("chat-avatar").textContent = bot ? bot.username[0].toUpperCase() : "?";
  $("chat-avatar").className = "avatar " + (bot && isStaff(bot.username) ? "staff" : "customer");
  $("chat-sub").textContent = bot && user
    ? `${roleOf(bot)} · you are ${user.first_name} (${user.id})${state.blocked ? " · blocked" : ""}`
    : "pick a user and a bot";
  const usable = Boolean(bot && user && !user.deactivated);
  const toggle = $("block-toggle");
  toggle.disabled = !usable;
  toggle.textContent = state.blocked ? "Unblock" : "Block bot";
  toggle.dataset.blocked = String(state.blocked);
  $("blocked-banner").hidden = !(usable && state.blocked);
  $("composer").hidden = usable && state.blocked;
  $("composer-input").disabled = !usable || state.blocked;
  $("composer-send").disabled = !usable || state.blocked;
  $("attach-input").disabled = !usable || state.blocked;
  $("attach").setAttribute("aria-disabled", String(!usable || state.blocked));
}

function renderMessages() {
  const box = $("messages");
  const records = (state.chats[state.bot] || []).filter((m) => !m.deleted);
  const pendingKeys = [...state.pending.values()].map((p) => `${p.messageId}:${p.data}`);
  const key = JSON.stringify([state.userId, state.bot, records.map((m) => [m.message_id, m.text, m.reply_markup, m.edit_date, m.media]), pendingKeys]);
  if (key === state.rendered) return;
  const grew = records.length !== box.querySelectorAll("[data-testid=message]").length;
  state.rendered = key;

  if (!currentUser() || !state.bot) {
    box.replaceChildren(el("div", {className: "empty"}, state.bots.length ? "Create or pick a user to start chatting." : "No bots yet."));
    return;
  }
  if (!records.length) {
    box.replaceChildren(el("div", {className: "empty"},
      isStaff(state.bot) ? "No messages yet. Staff join with /start CODE from POST /horeca/<id>/staff-codes."
        : "No messages yet. Send /start CODE with a code from POST /verification-codes."));
    return;
  }
  box.replaceChildren(...albums(records).map((m) => messageView(m, pendingKeys)));
  if (grew || state.stick) scrollToBottom();
}

/** The reply keyboard under the input field; a button sends its text, as in Telegram. */
function renderReplyKeyboard() {
  const box = $("reply-keyboard");
  const usable = Boolean(currentUser() && state.bot && !state.blocked);
  const markup = usable ? state.keyboard : null;
  const key = JSON.stringify(markup);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const rows = markup ? (markup.keyboard || []).filter((row) => row.length) : [];
  box.hidden = !rows.length;
  box.replaceChildren(...rows.map((row) => el("div", {className: "kb-row"}, ...row.map((button) => {
    const text = typeof button === "string" ? button : button.text;
    return el("button", {type: "button", className: "kb-button reply", "data-testid": "reply-button",
      onclick: () => sendText(text)}, text);
  }))));
  if (state.stick) scrollToBottom();
}

function scrollToBottom() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
  state.stick = true;
}

function messageView(m, pendingKeys) {
  const mine = m.from === "user";
  const bubble = el("div", {className: "bubble" + (m.media ? " media" : "")},
    m.media ? mediaView(m) : null,
    m.album && m.album.length > 1 ? null  // an album's captions are under its pictures
      : el("div", {className: "text", "data-testid": "message-text"}, renderText(m.plain_text ?? m.text, mine ? [] : m.entities)),
    el("div", {className: "meta"}, m.edit_date ? el("span", {className: "edited"}, "edited") : null, clock(m.date)));
  const keyboard = !mine && m.reply_markup && m.reply_markup.inline_keyboard ? keyboardView(m, pendingKeys) : null;
  return el("div", {
    className: "row " + (mine ? "out" : "in"), "data-testid": "message",
    dataset: {messageId: m.message_id, from: m.from},
  }, el("div", {className: "stack"}, bubble, keyboard));
}

function keyboardView(m, pendingKeys) {
  const rows = m.reply_markup.inline_keyboard.filter((row) => row.length);
  if (!rows.length) return null;
  return el("div", {className: "keyboard", "data-testid": "inline-keyboard"}, ...rows.map((row) =>
    el("div", {className: "kb-row"}, ...row.map((button) => buttonView(m, button, pendingKeys)))));
}

function buttonView(m, button, pendingKeys) {
  if (button.url) {
    return el("a", {className: "kb-button", "data-testid": "inline-button", href: SAFE_URL.test(button.url) ? button.url : undefined,
      target: "_blank", rel: "noopener noreferrer", title: button.url}, button.text, el("span", {className: "corner"}, "↗"));
  }
  if (button.callback_data === undefined) {
    return el("button", {type: "button", className: "kb-button", "data-testid": "inline-button", disabled: true,
      title: "this kind of button is not emulated"}, button.text);
  }
  const loading = pendingKeys.includes(`${m.message_id}:${button.callback_data}`);
  return el("button", {
    type: "button", className: "kb-button" + (loading ? " loading" : ""), "data-testid": "inline-button",
    dataset: {callback: button.callback_data}, onclick: () => press(m.message_id, button.callback_data),
  }, button.text);
}

// ------------------------------------------------------------------ actions

async function act(action) {
  try {
    await action();
  } catch (error) {
    toast(error.message);
  }
  state.rendered = "";
  try { await loadChats(); render(); } catch (error) { setConnection(false, error.message); }
}

function press(messageId, data) {
  return act(async () => {
    const bot = state.bot;
    // force: like a real client, send what is on screen even if the bot removed the button a moment ago
    // (the bot then answers the late press itself, e.g. "can no longer be cancelled").
    const answer = await control("POST", "press", {bot, user_id: state.userId, message_id: messageId, callback_data: data, force: true});
    state.pending.set(answer.callback_query_id, {bot, messageId, data, since: Date.now()});
  });
}

function send(event) {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text || !state.userId || !state.bot) return;
  return DEEP_LINK.test(text) ? openLink(text, input) : sendText(text, input);
}

function sendText(text, input) {
  if (!state.userId || !state.bot) return;
  return act(async () => {
    await control("POST", "send", {bot: state.bot, user_id: state.userId, text});
    if (input) { input.value = ""; input.focus(); }
  });
}

/** A t.me deep link, pasted or clicked: the emulator sends /start <parameter> to the bot it names; its chat opens. */
function openLink(url, input) {
  return act(async () => {
    const opened = await control("POST", "open_link", {user_id: state.userId, url});
    if (input) input.value = "";
    if (opened.bot !== state.bot) openBot(opened.bot);
  });
}

function onLinkClick(event) {
  const link = event.target.closest("a[href]");
  if (!link || !state.userId || !DEEP_LINK.test(link.getAttribute("href"))) return;
  event.preventDefault();
  openLink(link.getAttribute("href"));
}

function toggleBlock() {
  return act(() => control("POST", state.blocked ? "unblock" : "block", {bot: state.bot, user_id: state.userId}));
}

function restart() {
  return act(() => control("POST", "unblock", {bot: state.bot, user_id: state.userId, send_start: true}));
}

function saveUser(event) {
  event.preventDefault();
  const id = Number($("new-user-id").value);
  const firstName = $("new-user-name").value.trim();
  if (!Number.isSafeInteger(id) || id <= 0 || !firstName) { toast("A positive id and a first name, please."); return; }
  return act(async () => {
    await control("POST", "users", {id, first_name: firstName, language_code: $("new-user-lang").value});
    await loadUsers();
    selectUser(id);
    $("new-user").open = false;
  });
}

function selectUser(id) {
  state.userId = id || null;
  state.chats = {};
  state.unread = {};
  state.read = {};
  state.keyboard = null;
  state.pending.clear();
  state.blocked = false;
  state.rendered = "";
  const user = currentUser();
  if (user) {
    $("new-user-id").value = user.id;
    $("new-user-name").value = user.first_name;
    $("new-user-lang").value = user.language_code === "ru" ? "ru" : "en";
  }
  remember();
  render();
}

function openBot(username) {
  state.bot = username;
  state.blocked = false;
  state.keyboard = null;
  state.rendered = "";
  remember();
  act(async () => {});
}

// ------------------------------------------------------------------ start

async function start() {
  $("user-form").addEventListener("submit", saveUser);
  $("composer").addEventListener("submit", send);
  $("attach-input").addEventListener("change", attach);
  $("messages").addEventListener("click", onLinkClick);
  $("block-toggle").addEventListener("click", toggleBlock);
  $("restart-bot").addEventListener("click", restart);
  $("alert-ok").addEventListener("click", () => { $("alert-dialog").hidden = true; });
  $("user-select").addEventListener("change", (e) => selectUser(Number(e.target.value)));
  $("messages").addEventListener("scroll", (e) => {
    const box = e.target;
    state.stick = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  });
  new ResizeObserver(() => { if (state.stick) scrollToBottom(); }).observe($("messages"));
  $("new-user-id").value = 5000000000 + Math.floor(Math.random() * 100000000);

  const saved = JSON.parse(localStorage.getItem("tg-sandbox") || "{}");
  const params = new URLSearchParams(location.search);
  state.bot = params.get("bot") || saved.bot || null;
  const wanted = Number(params.get("user") || saved.user) || null;
  try {
    await Promise.all([loadBots(), loadUsers()]);
    setConnection(true);
  } catch (error) {
    setConnection(false, error.message);
  }
  if (wanted && state.users.some((u) => u.id === wanted)) selectUser(wanted);
  else if (state.users.length === 1) selectUser(state.users[0].id);
  if (!state.userId) $("new-user").open = true;
  render();
  state.ticks = 1;
  tick();
}

document.addEventListener("DOMContentLoaded", start);

// ------------------------------------------------------------------ media (photos, files, albums)

/** Consecutive messages of one album (same media_group_id) shown as one bubble: the first carries the others. */
function albums(records) {
  const shown = [];
  for (const m of records) {
    const group = m.media && m.media.media_group_id;
    const last = shown[shown.length - 1];
    if (group && last && last.media && last.media.media_group_id === group && last.from === m.from) {
      last.album.push(m);
    } else {
      shown.push(group ? {...m, album: [m]} : m);
    }
  }
  return shown;
}

function mediaView(m) {
  const items = m.album || [m];
  if (items.length > 1) {
    return el("div", {className: "album", "data-testid": "album"}, ...items.map((item) => el("figure", {},
      mediaItem(item.media), item.plain_text ? el("figcaption", {}, item.plain_text) : null)));
  }
  return mediaItem(m.media);
}

function mediaItem(media) {
  if ((media.type === "photo" || media.type === "sticker") && media.url) {
    return el("img", {className: "photo", "data-testid": "message-photo", src: media.url, alt: media.type});
  }
  if (media.type === "location") return el("div", {className: "file"}, `📍 ${media.location.latitude}, ${media.location.longitude}`);
  if (media.type === "venue") return el("div", {className: "file"}, `📍 ${media.venue.title}, ${media.venue.address}`);
  if (media.type === "contact") return el("div", {className: "file"}, `👤 ${media.contact.first_name} ${media.contact.phone_number}`);
  const size = media.file_size >= 1024 * 1024 ? `${(media.file_size / 1048576).toFixed(1)} MB` : `${Math.ceil(media.file_size / 1024)} KB`;
  return el("div", {className: "file", "data-testid": "message-file"}, `📎 ${media.file_name || media.type} · ${size}`);
}

/** A picked file goes to the bot as a photo (images) or a document, the typed text as its caption. */
function attach(event) {
  const file = event.target.files && event.target.files[0];
  event.target.value = "";
  if (!file || !state.userId || !state.bot) return;
  const input = $("composer-input");
  const reader = new FileReader();
  reader.onload = () => act(async () => {
    const type = /^image\/(png|jpeg|gif|webp)$/.test(file.type) ? "photo" : "document";
    await control("POST", "send_media", {bot: state.bot, user_id: state.userId, type, data: reader.result,
      caption: input.value.trim(), file_name: file.name, mime_type: file.type || undefined});
    input.value = "";
  });
  reader.onerror = () => toast("Could not read the file.");
  reader.readAsDataURL(file);
}

