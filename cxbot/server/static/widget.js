/* cxbot demo widget: the customer's chat pane and the human agent's assist panel.
 *
 * Plain browser JavaScript, no build step and no third-party code. Every text that comes
 * from the customer, the assistant or the knowledge base is set with textContent (never
 * innerHTML), so nothing in a message can become markup.
 *
 * Replies stream from POST /v1/conversations/{id}/messages/stream: EventSource cannot POST
 * or send an Authorization header, so server-sent events are read from a fetch() body.
 */
"use strict";

(function () {
  const API = "/v1";
  const state = {
    customerKey: "",
    agentKey: "",
    customerId: "",
    conversationId: null,
    token: null,
    handoff: null,
    busy: false,
    events: null, // AbortController of the assist event stream
    generation: 0, // bumps on every new conversation; stale async work checks it
  };

  const $ = (id) => document.getElementById(id);

  /* ---------- DOM helpers (text only) ---------- */

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function muted(text) {
    return el("p", { class: "muted", text });
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text || "";
    status.classList.toggle("error", Boolean(isError));
  }

  function scrollMessages() {
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
  }

  /* ---------- settings: URL fragment or the form ---------- */

  function readSettings() {
    const fromHash = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    let stored = {};
    try {
      stored = JSON.parse(window.sessionStorage.getItem("cxbot-demo-keys") || "{}");
    } catch (_) {
      stored = {};
    }
    state.customerKey = fromHash.get("customer_key") || stored.customerKey || "";
    state.agentKey = fromHash.get("agent_key") || stored.agentKey || "";
    state.customerId = fromHash.get("customer_id") || stored.customerId || "";
    if (fromHash.has("customer_key") || fromHash.has("agent_key")) {
      saveSettings();
      // keys do not stay in the address bar (or in the history) once read
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    $("customer-key").value = state.customerKey;
    $("agent-key").value = state.agentKey;
    $("customer-id").value = state.customerId;
    if (!state.customerKey) {
      $("settings").open = true;
      setStatus("Enter a customer key (and an agent key for the assist panel) to start.");
    }
  }

  function saveSettings() {
    try {
      window.sessionStorage.setItem(
        "cxbot-demo-keys",
        JSON.stringify({ customerKey: state.customerKey, agentKey: state.agentKey, customerId: state.customerId }),
      );
    } catch (_) {
      /* private mode: keys live in memory only */
    }
  }

  /* ---------- HTTP ---------- */

  async function api(method, path, key, body, extraHeaders) {
    const headers = Object.assign({ Authorization: "Bearer " + key }, extraHeaders || {});
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, init);
    if (!response.ok) throw await httpError(response);
    return response;
  }

  async function httpError(response) {
    let detail = "";
    try {
      const data = await response.json();
      detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    } catch (_) {
      /* not JSON */
    }
    const error = new Error("HTTP " + response.status + (detail ? ": " + detail : ""));
    error.status = response.status;
    return error;
  }

  /* Server-sent events from a fetch() response: yields {event, data} with data parsed as JSON. */
  async function* readEvents(response, signal) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let name = "message";
    let data = [];
    const onAbort = () => reader.cancel().catch(() => {});
    if (signal) signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (;;) {
          const match = /\r\n|\r|\n/.exec(buffer);
          if (!match) break;
          // a lone \r at the end may be the first half of \r\n: wait for the next chunk
          if (match[0] === "\r" && match.index === buffer.length - 1) break;
          const line = buffer.slice(0, match.index);
          buffer = buffer.slice(match.index + match[0].length);
          if (line === "") {
            if (data.length) {
              const raw = data.join("\n");
              let parsed;
              try {
                parsed = JSON.parse(raw);
              } catch (_) {
                parsed = raw;
              }
              yield { event: name, data: parsed };
            }
            name = "message";
            data = [];
            continue;
          }
          if (line.startsWith(":")) continue; // comment / keep-alive
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          let val = colon === -1 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") name = val || "message";
          else if (field === "data") data.push(val);
        }
      }
    } finally {
      if (signal) signal.removeEventListener("abort", onAbort);
    }
  }

  /* ---------- the customer's chat ---------- */

  function addMessage(role, text) {
    const who = role === "user" ? "You" : role === "bot" ? "Assistant" : "Notice";
    const item = el(
      "li",
      { class: "msg " + role, "data-role": role },
      el("span", { class: "who", text: who }),
      el("span", { class: "text", text: text || "" }),
    );
    $("messages").append(item);
    scrollMessages();
    return item;
  }

  function sourceLabel(citation) {
    if (citation.title) return citation.title;
    const source = String(citation.source || "source");
    return source.split("/").pop();
  }

  /* A source chip; `number` matches the reply's [n] markers. */
  function citationChip(citation, number) {
    const label = (number ? "[" + number + "] " : "") + sourceLabel(citation);
    const tip = [citation.source, citation.snippet].filter(Boolean).join(" — ");
    const source = String(citation.source || "");
    if (/^https?:\/\//i.test(source)) {
      return el("a", { class: "chip", href: source, target: "_blank", rel: "noopener noreferrer", title: tip, text: label });
    }
    return el("span", { class: "chip", title: tip, "data-source": source, text: label });
  }

  function showCitations(item, citations) {
    const old = item.querySelector(".citations");
    if (old) old.remove();
    if (!citations || !citations.length) return;
    const list = el("ul", { class: "citations", "aria-label": "Sources" });
    citations.forEach((citation, index) => list.append(el("li", {}, citationChip(citation, index + 1))));
    item.append(list);
  }

  function finishReply(item, reply, replaceShown) {
    item.classList.remove("pending");
    const text = item.querySelector(".text");
    if (replaceShown || !text.textContent || text.textContent !== reply.text) text.textContent = reply.text || "";
    if (replaceShown) item.classList.add("replaced");
    if (reply.route) item.setAttribute("data-route", reply.route);
    if (reply.intent) item.setAttribute("data-intent", reply.intent);
    showCitations(item, reply.citations);
    scrollMessages();
    if (reply.handoff) showHandoff(reply.handoff);
  }

  async function startConversation() {
    if (!state.customerKey) throw new Error("a customer key is needed: open Settings");
    const generation = ++state.generation;
    const body = state.customerId ? { customer_id: state.customerId } : {};
    const response = await api("POST", "/sessions", state.customerKey, body);
    const session = await response.json();
    if (generation !== state.generation) return;
    state.conversationId = session.conversation_id;
    state.token = session.token;
    state.handoff = null;
    $("assist-conversation").textContent = "Conversation " + state.conversationId;
    $("assist-conversation").classList.remove("muted");
    setStatus("Connected.");
    watchAssist(generation);
  }

  function resetConversation() {
    state.generation++;
    if (state.events) state.events.abort();
    state.events = null;
    state.conversationId = null;
    state.token = null;
    state.handoff = null;
    clear($("messages"));
    $("handoff-banner").hidden = true;
    $("assist-conversation").textContent = "No conversation yet.";
    $("assist-conversation").classList.add("muted");
    clear($("summary"));
    $("summary").append(muted("Nothing yet."));
    clear($("suggestions"));
    clear($("articles"));
    clear($("nlu"));
    $("next-action").textContent = "Nothing yet.";
    $("next-action").classList.add("muted");
    $("agent-input").value = "";
  }

  async function send(text) {
    if (!state.conversationId) await startConversation();
    const generation = state.generation;
    const path = "/conversations/" + encodeURIComponent(state.conversationId) + "/messages";
    addMessage("user", text);
    const item = addMessage("bot", "");
    item.classList.add("pending");
    item.setAttribute("aria-busy", "true");
    try {
      let response;
      try {
        response = await api("POST", path + "/stream", state.token, { text }, { Accept: "text/event-stream" });
      } catch (error) {
        if (error.status !== 404 && error.status !== 405) throw error;
        response = null; // no streaming on this server: one JSON reply
      }
      if (response === null) {
        const reply = await (await api("POST", path, state.token, { text })).json();
        finishReply(item, reply, true);
        return;
      }
      let finished = false;
      for await (const event of readEvents(response)) {
        if (generation !== state.generation) return;
        if (event.event === "delta") {
          item.querySelector(".text").textContent += event.data.text || "";
          scrollMessages();
        } else if (event.event === "final") {
          finishReply(item, event.data.reply, Boolean(event.data.replace_shown));
          finished = true;
        } else if (event.event === "error") {
          const detail = event.data && (event.data.detail || event.data.message);
          throw new Error(typeof detail === "string" ? detail : "the reply failed");
        }
      }
      if (!finished) throw new Error("the reply stream ended early");
    } catch (error) {
      item.remove();
      addMessage("error", "Sorry, that message could not be answered (" + error.message + ").");
      throw error;
    } finally {
      item.removeAttribute("aria-busy");
    }
    refreshAssist(generation);
  }

  function showHandoff(summary) {
    state.handoff = summary;
    $("handoff-banner").hidden = false;
    $("chat-form").setAttribute("data-handoff", "true");
    renderSummary(summary, true);
    refreshSummary(state.generation);
  }

  /* ---------- the agent's assist panel ---------- */

  function field(list, name, label, value) {
    if (value === null || value === undefined || value === "") return;
    if (Array.isArray(value) && !value.length) return;
    if (typeof value === "object" && !Array.isArray(value) && !(value instanceof Node) && !Object.keys(value).length) return;
    const dd = el("dd", { "data-field": name });
    if (value instanceof Node) dd.append(value);
    else if (Array.isArray(value)) {
      const ul = el("ul");
      for (const entry of value) ul.append(el("li", { text: entry }));
      dd.append(ul);
    } else if (typeof value === "object") {
      const ul = el("ul");
      for (const [key, entry] of Object.entries(value)) ul.append(el("li", { text: key.replace(/_/g, " ") + ": " + entry }));
      dd.append(ul);
    } else dd.textContent = String(value);
    list.append(el("dt", { text: label }), dd);
  }

  function customerText(customer) {
    if (!customer) return "unidentified customer";
    if (typeof customer === "string") return customer;
    const tags = [customer.id, customer.segment].filter(Boolean).join(", ");
    return (customer.name || "customer") + (tags ? " (" + tags + ")" : "");
  }

  function renderSummary(summary, isHandoff) {
    const box = $("summary");
    clear(box);
    box.classList.add("summary");
    if (!summary) {
      box.append(muted("Nothing yet."));
      return;
    }
    if (typeof summary === "string") {
      box.append(el("p", { text: summary }));
      return;
    }
    if (isHandoff) {
      box.setAttribute("data-handoff", "true");
      box.append(el("p", { class: "chip internal handoff-flag", text: "Handed over: " + (summary.reason || "") }));
    } else box.removeAttribute("data-handoff");
    if (summary.reason) box.setAttribute("data-reason", summary.reason);
    const list = el("dl");
    field(list, "reason", "Reason", summary.reason);
    field(list, "queue", "Queue", summary.queue);
    field(list, "customer", "Customer", "customer" in summary ? customerText(summary.customer) : null);
    field(list, "profile", "Profile", summary.customer && summary.customer.facts);
    field(list, "intent", "Intent", summary.intent);
    field(list, "flow", "Flow", summary.flow);
    field(list, "slots", "Details so far", summary.slots);
    field(list, "tried", "Tried", summary.tried);
    field(list, "last_user_messages", "Customer said", summary.last_user_messages);
    field(list, "open_question", "Open question", summary.open_question);
    field(list, "suggested_next_step", "Next step", summary.suggested_next_step);
    box.append(list);
  }

  function asText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    return value.text || value.label || value.action || value.title || value.name || JSON.stringify(value);
  }

  function renderSuggestions(replies) {
    const list = $("suggestions");
    clear(list);
    if (!replies || !replies.length) {
      list.append(el("li", { class: "muted", text: "No suggestion for now." }));
      return;
    }
    replies.forEach((reply, index) => {
      const text = asText(reply);
      const item = el("li", { class: "suggestion", "data-index": index }, el("p", { class: "text", text }));
      const citations = (reply && reply.citations) || [];
      if (citations.length) {
        const chips = el("ul", { class: "citations", "aria-label": "Sources" });
        citations.forEach((citation, index) => chips.append(el("li", {}, citationChip(citation, index + 1))));
        item.append(chips);
      }
      const use = el("button", {
        type: "button",
        class: "secondary use",
        "aria-label": "Use suggested reply " + (index + 1),
        text: "Use",
        onclick: () => {
          const input = $("agent-input");
          input.value = text;
          input.focus();
        },
      });
      item.append(el("div", { class: "actions" }, use));
      list.append(item);
    });
  }

  function renderArticles(articles) {
    const list = $("articles");
    clear(list);
    if (!articles || !articles.length) {
      list.append(el("li", { class: "muted", text: "No article for now." }));
      return;
    }
    for (const article of articles) {
      const chip = citationChip(article);
      if (article.internal) chip.classList.add("internal");
      const meta = [article.source, typeof article.score === "number" ? "score " + article.score.toFixed(2) : "", article.internal ? "staff only" : ""]
        .filter(Boolean)
        .join(" · ");
      list.append(
        el(
          "li",
          { class: "article", "data-internal": article.internal ? "true" : "false" },
          chip,
          el("div", { class: "meta", text: meta }),
          article.snippet ? el("p", { class: "snippet", text: article.snippet }) : null,
        ),
      );
    }
  }

  function renderNlu(payload) {
    const box = $("nlu");
    clear(box);
    let intents = payload.intents || (payload.intent ? [payload.intent] : []);
    if (!Array.isArray(intents)) intents = [intents];
    const entities = payload.entities || [];
    if (!intents.length && !entities.length) {
      box.append(muted("Nothing recognised yet."));
      return;
    }
    if (intents.length) {
      const tags = el("ul", { class: "tags", "aria-label": "Intents" });
      for (const intent of intents) {
        const name = typeof intent === "string" ? intent : intent.name || intent.intent || asText(intent);
        const score = intent && (intent.confidence ?? intent.score);
        tags.append(el("li", { class: "chip intent", text: typeof score === "number" ? name + " " + score.toFixed(2) : name }));
      }
      box.append(el("p", { class: "hint", text: "Intents" }), tags);
    }
    if (entities.length) {
      const tags = el("ul", { class: "tags", "aria-label": "Entities" });
      for (const entity of entities) {
        const kind = entity.type || entity.kind || entity.name || "entity";
        const value = entity.value ?? entity.text ?? "";
        tags.append(el("li", { class: "chip entity", text: kind + ": " + asText(value) }));
      }
      box.append(el("p", { class: "hint", text: "Entities" }), tags);
    }
  }

  function renderNextAction(action) {
    const box = $("next-action");
    const text = asText(action);
    box.textContent = text || "Nothing yet.";
    box.classList.toggle("muted", !text);
  }

  function renderAssist(payload) {
    if (!payload || typeof payload !== "object") return;
    if (payload.suggestions && typeof payload.suggestions === "object" && !Array.isArray(payload.suggestions)) {
      payload = payload.suggestions; // an event that wraps the suggestions
    }
    renderSuggestions(payload.suggested_replies || payload.replies || (Array.isArray(payload.suggestions) ? payload.suggestions : []));
    renderArticles(payload.articles || payload.relevant_articles || []);
    renderNlu(payload);
    renderNextAction(payload.next_best_action || payload.next_action);
    // once handed over, the panel keeps the handoff summary (refreshed from /summary)
    if (payload.handoff) showHandoffSummaryOnly(payload.handoff);
    else if (payload.handed_off && payload.summary && typeof payload.summary === "object") {
      showHandoffSummaryOnly(payload.summary);
    } else if (!state.handoff) renderSummary(payload.summary || payload.live_summary, false);
  }

  function showHandoffSummaryOnly(summary) {
    state.handoff = summary;
    $("handoff-banner").hidden = false;
    renderSummary(summary, true);
  }

  async function refreshSummary(generation) {
    if (!state.agentKey || !state.conversationId) return;
    try {
      const path = "/conversations/" + encodeURIComponent(state.conversationId) + "/summary";
      const summary = await (await api("GET", path, state.agentKey)).json();
      if (generation === state.generation && state.handoff) renderSummary(summary, true);
    } catch (error) {
      setStatus("Summary unavailable: " + error.message, true);
    }
  }

  async function refreshAssist(generation) {
    if (!state.agentKey || !state.conversationId) return;
    try {
      const path = "/conversations/" + encodeURIComponent(state.conversationId) + "/assist";
      const payload = await (await api("GET", path, state.agentKey)).json();
      if (generation === state.generation) renderAssist(payload);
    } catch (error) {
      setStatus("Assist unavailable: " + error.message, true);
    }
  }

  /* The assist event stream, reopened after a pause while the conversation lasts. */
  async function watchAssist(generation) {
    if (!state.agentKey) {
      $("summary").replaceChildren(muted("Give an agent key in Settings to see assist."));
      return;
    }
    let pause = 1000;
    while (generation === state.generation) {
      const controller = new AbortController();
      state.events = controller;
      try {
        const path = "/conversations/" + encodeURIComponent(state.conversationId) + "/events";
        const response = await fetch(API + path, {
          headers: { Authorization: "Bearer " + state.agentKey, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (!response.ok) throw await httpError(response);
        pause = 1000;
        for await (const event of readEvents(response, controller.signal)) {
          if (generation !== state.generation) return;
          if (event.event === "assist") renderAssist(event.data);
        }
      } catch (error) {
        if (controller.signal.aborted || generation !== state.generation) return;
        if (error.status === 401 || error.status === 403) {
          setStatus("The agent key was refused: " + error.message, true);
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 15000);
    }
  }

  /* ---------- wiring ---------- */

  function setBusy(busy) {
    state.busy = busy;
    $("send-button").disabled = busy;
    $("chat-form").setAttribute("aria-busy", busy ? "true" : "false");
  }

  document.addEventListener("DOMContentLoaded", () => {
    readSettings();

    $("settings-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      state.customerKey = $("customer-key").value.trim();
      state.agentKey = $("agent-key").value.trim();
      state.customerId = $("customer-id").value.trim();
      saveSettings();
      resetConversation();
      try {
        await startConversation();
        $("settings").open = false;
        $("chat-input").focus();
      } catch (error) {
        setStatus("Could not start a conversation: " + error.message, true);
      }
    });

    $("chat-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("chat-input");
      const text = input.value.trim();
      if (!text || state.busy) return;
      input.value = "";
      setBusy(true);
      try {
        await send(text);
        setStatus("");
      } catch (error) {
        setStatus(error.message, true);
      } finally {
        setBusy(false);
        input.focus();
      }
    });
  });
})();
