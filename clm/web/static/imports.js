// The upload form sends its file with XMLHttpRequest, so a bar can show how much has gone (a
// large file takes minutes); the CSRF token travels as a header too, and the
// browser then follows the server's answer (the columns page). Without script the form posts.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const error = document.getElementById("upload-error");
  const sending = document.getElementById("upload-sending-text").textContent;
  const failed = document.getElementById("upload-failed-text").textContent;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", form.elements["csrf_token"].value);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const share = Math.floor((100 * e.loaded) / e.total);
      bar.querySelector("progress").value = share;
      percent.textContent = sending.replace("{percent}", share + "%");
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300 && xhr.responseURL && !xhr.responseURL.endsWith("/imports/upload")) {
        window.location.assign(xhr.responseURL);
        return;
      }
      const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const said = page.getElementById("upload-error");
      error.textContent = said && said.textContent.trim() ? said.textContent : failed;
      error.hidden = false;
      bar.hidden = true;
      button.disabled = false;
    });
    xhr.addEventListener("error", () => {
      error.textContent = failed;
      error.hidden = false;
      bar.hidden = true;
      button.disabled = false;
    });
    error.hidden = true;
    bar.hidden = false;
    button.disabled = true;
    xhr.send(new FormData(form));
  });
});
