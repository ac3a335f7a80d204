// Doorman's passkey script (WebAuthn), loaded only by the pages that use
// passkeys. The server makes every ceremony's options and checks every
// answer; this script only carries them between the page and the browser's
// navigator.credentials, as base64url JSON in an ordinary form post:
//  - adding a passkey: form[data-passkey-create] names the JSON script of
//    the options; its button asks the browser to create the passkey and
//    posts the answer;
//  - signing in: form[data-passkey-login] fetches a ceremony's options as
//    the page loads, offers the account's passkeys in the email field's
//    autofill (conditional mediation) and on its button, and posts the
//    answer;
//  - after a removal: [data-passkey-forget] tells the browser the
//    credential is gone (signalUnknownCredential), where it can hear it.
"use strict";

(function () {
  const supported = typeof window.PublicKeyCredential === "function" && navigator.credentials;

  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((d) => Object.assign({}, d, { id: toBytes(d.id) }));
  }

  function creationOptions(json) {
    const o = Object.assign({}, json.publicKey);
    o.challenge = toBytes(o.challenge);
    o.user = Object.assign({}, o.user, { id: toBytes(o.user.id) });
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    const o = Object.assign({}, json.publicKey);
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function extensions(cred) {
    try {
      return cred.getClientExtensionResults();
    } catch (e) {
      return {};
    }
  }

  function createdJSON(cred) {
    const r = cred.response;
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        attestationObject: toB64url(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : undefined,
      },
      clientExtensionResults: extensions(cred),
    });
  }

  function assertedJSON(cred) {
    const r = cred.response;
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : undefined,
      },
      clientExtensionResults: extensions(cred),
    });
  }

  // say puts a message in the form's alert region (or clears it).
  function say(form, text) {
    const el = form.querySelector("[data-passkey-error]");
    if (el) el.textContent = text;
  }

  function problem(err, what) {
    if (err && err.name === "NotAllowedError") return what + " was cancelled, or took too long. Try again.";
    if (err && err.name === "InvalidStateError") return "This device or password manager already keeps a passkey for your account.";
    if (err && err.name === "SecurityError") return "Passkeys can't be used at this address.";
    return what + " didn't work in this browser" + (err && err.message ? ": " + err.message : ".");
  }

  // Adding a passkey.
  for (const form of document.querySelectorAll("form[data-passkey-create]")) {
    const data = document.getElementById(form.dataset.passkeyCreate);
    if (!supported) {
      say(form, "This browser can't make passkeys.");
      form.querySelector("button[type=submit]").disabled = true;
      continue;
    }
    let busy = false;
    form.querySelector("button[type=submit]").disabled = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (busy) return;
      busy = true;
      say(form, "");
      try {
        const cred = await navigator.credentials.create({ publicKey: creationOptions(JSON.parse(data.textContent)) });
        form.elements.credential.value = createdJSON(cred);
        form.submit();
      } catch (err) {
        say(form, problem(err, "Creating the passkey"));
        busy = false;
      }
    });
  }

  // Signing in.
  for (const form of document.querySelectorAll("form[data-passkey-login]")) {
    const button = form.querySelector("button[type=submit]");
    if (!supported) {
      say(form, "This browser can't use passkeys: sign in with your password.");
      button.disabled = true;
      continue;
    }
    let options = null;
    let conditional = null; // the autofill's request, aborted for the button
    let settled = Promise.resolve(); // when the autofill's request is over
    let modal = false; // the button was pressed: no autofill request now
    let done = false;
    const csrf = form.elements.csrf.value;

    const send = (cred) => {
      if (done) return;
      done = true;
      form.elements.credential.value = assertedJSON(cred);
      form.submit();
    };

    const load = async () => {
      const res = await fetch(form.dataset.passkeyLogin, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: "csrf=" + encodeURIComponent(csrf),
      });
      const json = await res.json();
      if (!res.ok) throw new Error(json.error || "status " + res.status);
      return json;
    };
    const ready = load().then((json) => (options = json));
    ready.then(() => (button.disabled = false), (err) => {
      say(form, "Passkey sign-in isn't available right now: " + err.message);
    });

    // The autofill: the browser lists the site's passkeys under the email
    // field (autocomplete="username webauthn") and answers when one is
    // picked. A browser has one request at a time: the button's waits for
    // this one to be aborted and over.
    ready.then(async () => {
      if (typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
      if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
      if (modal || done) return;
      conditional = new AbortController();
      const request = navigator.credentials.get({
        mediation: "conditional", publicKey: requestOptions(options), signal: conditional.signal,
      });
      settled = request.then(() => {}, () => {});
      try {
        const cred = await request;
        if (cred) send(cred);
      } catch (err) {
        // Aborted for the button, or the browser gave up: the button
        // still works.
      }
    }).catch(() => {});

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (done) return;
      modal = true;
      say(form, "");
      try {
        await ready;
      } catch (err) {
        say(form, "Passkey sign-in isn't available right now: " + err.message);
        return;
      }
      if (conditional) {
        conditional.abort();
        conditional = null;
      }
      await settled;
      try {
        const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
        if (cred) send(cred);
      } catch (err) {
        say(form, problem(err, "Signing in with a passkey"));
      }
    });
  }

  // After a removal: the browser's passkey manager may drop it.
  for (const el of document.querySelectorAll("[data-passkey-forget]")) {
    if (supported && typeof PublicKeyCredential.signalUnknownCredential === "function") {
      PublicKeyCredential.signalUnknownCredential({ rpId: el.dataset.rpId, credentialId: el.dataset.passkeyForget }).catch(() => {});
    }
  }
})();
