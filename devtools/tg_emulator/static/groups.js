// The sandbox page's staff groups: a supergroup with a topic per customer, played as the user picked in app.js.
// Uses app.js's globals (state, control, el, renderText, toast, query, clock, $, albums, mediaView). Texts become DOM nodes only.
"use strict";

const groupState = {
  groups: [],      // [{chat_id, title, type, is_forum, migrated_to, members, topics}]
  chatId: null,    // the open group
  thread: null,    // the open topic (null: General)
  detail: null,    // the open group with its messages
  rendered: "",
};

const staffBot = () => (state.bots.find((b) => b.configured && isStaff(b.username)) || {}).username;
const liveGroups = () => groupState.groups.filter((g) => !g.migrated_to);

async function loadGroups() {
  groupState.groups = await control("GET", "groups");
  const open = groupState.groups.find((g) => g.chat_id === groupState.chatId);
  if (open && open.migrated_to) groupState.chatId = open.migrated_to; // follow an upgrade, as Telegram does
  groupState.detail = groupState.chatId ? await control("GET", "group?" + query({chat_id: groupState.chatId})) : null;
}

async function groupTick() {
  try {
    await loadGroups();
    renderGroups();
  } catch (error) {
    // app.js shows the connection state; a vanished group (reset) just closes
    if (groupState.chatId) closeGroup();
  } finally {
    setTimeout(groupTick, POLL_MS);
  }
}

function groupAct(action) {
  return (async () => {
    try { await action(); } catch (error) { toast(error.message); }
    groupState.rendered = "";
    try { await loadGroups(); renderGroups(); } catch (error) { toast(error.message); }
  })();
}

// ------------------------------------------------------------------ sidebar: the list and "new group"

function renderGroupList() {
  const nav = $("group-tabs");
  const key = JSON.stringify([liveGroups().map((g) => [g.chat_id, g.title, g.topics.length]), groupState.chatId]);
  if (nav.dataset.key === key) return;
  nav.dataset.key = key;
  nav.replaceChildren(...liveGroups().map((g) => el("button", {
    type: "button", className: "chat-tab" + (g.chat_id === groupState.chatId ? " active" : ""), "data-testid": "group-tab",
    dataset: {chatId: g.chat_id}, onclick: () => openGroup(g.chat_id),
  },
  el("span", {className: "avatar group", "aria-hidden": "true"}, "#"),
  el("span", {className: "tab-text"},
    el("span", {className: "tab-name"}, g.title),
    el("span", {className: "tab-role"}, g.is_forum ? `group with topics · ${g.topics.filter((t) => !t.deleted).length} topics`
      : g.type === "group" ? "basic group (no topics)" : "supergroup, topics off")))));
}

function createGroup(event) {
  event.preventDefault();
  if (!state.userId) { toast("Pick a user first: they create the group and own it."); return; }
  const bot = staffBot();
  const kind = $("group-kind").value;
  return groupAct(async () => {
    const group = await control("POST", "groups", {user_id: state.userId, title: $("group-title").value.trim() || "Staff", type: kind});
    if (bot) await control("POST", "group/member", {chat_id: group.chat_id, bot, status: "administrator", can_manage_topics: true});
    $("new-group").open = false;
    openGroup(group.chat_id);
  });
}

// ------------------------------------------------------------------ the group pane

function openGroup(chatId) {
  groupState.chatId = chatId;
  groupState.thread = null;
  groupState.rendered = "";
  $("chat-pane").hidden = true;
  $("group-pane").hidden = false;
  groupAct(async () => {});
}

function closeGroup() {
  groupState.chatId = null;
  groupState.detail = null;
  $("group-pane").hidden = true;
  $("chat-pane").hidden = false;
  renderGroupList();
}

function botMember(detail) {
  const bot = staffBot();
  return detail.members.find((m) => m.is_bot && m.name === bot) || null;
}

function renderGroups() {
  renderGroupList();
  const g = groupState.detail;
  if (!g) return;
  const messages = g.messages.filter((m) => !m.deleted);
  const key = JSON.stringify([g, groupState.thread, state.userId]);
  if (key === groupState.rendered) return;
  groupState.rendered = key;

  $("group-title-view").textContent = g.title;
  const member = botMember(g);
  const rights = !member || ["left", "kicked"].includes(member.status) ? "not in the group"
    : member.status === "administrator" ? (member.can_manage_topics ? "admin, can manage topics" : "admin without Manage Topics")
      : member.status;
  $("group-sub").textContent = `${g.is_forum ? "topics on" : g.type === "group" ? "basic group" : "topics off"} · @${staffBot() || "?"}: ${rights}`;
  $("group-rights").value = !member || ["left", "kicked"].includes(member.status) ? "left"
    : member.status === "administrator" ? (member.can_manage_topics ? "topics" : "admin") : "member";
  $("group-upgrade").hidden = g.type !== "group";
  $("group-forum").hidden = g.type !== "supergroup";
  $("group-forum").textContent = g.is_forum ? "Turn topics off" : "Turn topics on";

  const topics = g.topics.filter((t) => !t.deleted);
  if (groupState.thread && !topics.some((t) => t.message_thread_id === groupState.thread)) groupState.thread = null;
  $("topic-list").replaceChildren(
    topicButton(null, "General", false),
    ...topics.map((t) => topicButton(t.message_thread_id, t.name, t.closed)));

  const shown = messages.filter((m) => (m.message_thread_id || null) === groupState.thread);
  const box = $("group-messages");
  box.replaceChildren(...(shown.length ? albums(shown).map(groupMessageView) : [el("div", {className: "empty"},
    groupState.thread ? "No messages in this topic." : "Send /link CODE here, with a code from POST /horeca/<id>/group-codes.")]));
  box.scrollTop = box.scrollHeight;
  const topic = topics.find((t) => t.message_thread_id === groupState.thread);
  $("topic-actions").hidden = !topic;
  $("topic-close").textContent = topic && topic.closed ? "Reopen topic" : "Close topic";
  $("group-input").placeholder = topic ? `Message in “${topic.name}” as you` : "Message in General as you (e.g. /link CODE)";
}

function topicButton(thread, name, closed) {
  return el("button", {
    type: "button", className: "topic" + (thread === groupState.thread ? " active" : ""), "data-testid": "topic",
    dataset: {thread: thread === null ? "" : thread}, onclick: () => { groupState.thread = thread; groupState.rendered = ""; renderGroups(); },
  }, (closed ? "🔒 " : "# ") + name);
}

function serviceText(service) {
  const [kind, value] = Object.entries(service)[0];
  switch (kind) {
    case "forum_topic_created": return `topic “${value.name}” created`;
    case "forum_topic_edited": return `topic renamed to “${value.name}”`;
    case "forum_topic_closed": return "topic closed";
    case "forum_topic_reopened": return "topic reopened";
    case "new_chat_members": return `${value.map((u) => u.username || u.first_name).join(", ")} joined`;
    case "migrate_to_chat_id": return `upgraded to supergroup ${value}`;
    case "migrate_from_chat_id": return `upgraded from group ${value}`;
    default: return kind;
  }
}

function groupMessageView(m) {
  if (m.service) {
    return el("div", {className: "service", "data-testid": "group-service"}, el("span", {}, serviceText(m.service)));
  }
  const mine = m.from === "user" && m.from_id === state.userId;
  return el("div", {className: "row " + (mine ? "out" : "in"), "data-testid": "group-message", dataset: {from: m.from}},
    el("div", {className: "stack"}, el("div", {className: "bubble" + (m.media ? " media" : "")},
      el("div", {className: "author"}, m.from === "bot" ? "@" + m.from_name : m.from_name || String(m.from_id)),
      m.media ? mediaView(m) : null,  // photos, files, albums: app.js's media rendering
      m.album && m.album.length > 1 ? null  // an album's captions are under its pictures
        : el("div", {className: "text", "data-testid": "group-message-text"}, renderText(m.plain_text || "", [])),
      m.edits.length ? el("div", {className: "meta"}, el("span", {className: "edited"}, "edited")) : null)));
}

function sendInGroup(event) {
  event.preventDefault();
  const input = $("group-input");
  const text = input.value.trim();
  const g = groupState.detail;
  if (!text || !g) return;
  if (!state.userId) { toast("Pick a user first."); return; }
  return groupAct(async () => {
    const me = g.members.find((m) => !m.is_bot && m.id === state.userId);
    if (!me || ["left", "kicked"].includes(me.status)) {
      await control("POST", "group/member", {chat_id: g.chat_id, member_id: state.userId, status: "member"});
    }
    await control("POST", "group/send", {chat_id: g.chat_id, user_id: state.userId, text, message_thread_id: groupState.thread});
    input.value = "";
  });
}

function setRights(event) {
  const g = groupState.detail;
  const value = event.target.value;
  const status = value === "topics" || value === "admin" ? "administrator" : value;
  return groupAct(() => control("POST", "group/member", {chat_id: g.chat_id, bot: staffBot(), status, can_manage_topics: value === "topics"}));
}

function topicAction(action) {
  const g = groupState.detail;
  const owner = g.members.find((m) => m.status === "creator");
  return groupAct(() => control("POST", "group/topic", {chat_id: g.chat_id, user_id: owner.id, action, message_thread_id: groupState.thread}));
}

function startGroups() {
  $("group-form").addEventListener("submit", createGroup);
  $("group-composer").addEventListener("submit", sendInGroup);
  $("group-rights").addEventListener("change", setRights);
  $("group-back").addEventListener("click", closeGroup);
  $("group-upgrade").addEventListener("click", () => groupAct(() => control("POST", "group/migrate", {chat_id: groupState.chatId, is_forum: true})));
  $("group-forum").addEventListener("click", () => groupAct(() => control("POST", "group/forum", {chat_id: groupState.chatId, is_forum: !groupState.detail.is_forum})));
  $("topic-close").addEventListener("click", () => topicAction(groupState.detail.topics.find((t) => t.message_thread_id === groupState.thread).closed ? "reopen" : "close"));
  $("topic-delete").addEventListener("click", () => topicAction("delete"));
  $("bot-tabs").addEventListener("click", () => { if (groupState.chatId) closeGroup(); });
  groupTick();
}

document.addEventListener("DOMContentLoaded", startGroups);
