// Errors shown next to the control that failed, until dismissed (the × button); the same message is not repeated.

const KEEP = 3; // the latest few errors of a place

export function showError(container, text) {
  const line = String(text);
  console.error(line);
  if (!container) return;
  for (const old of container.querySelectorAll('.error')) if (old.dataset.text === line) old.remove();
  const box = document.createElement('div');
  box.className = 'error';
  box.setAttribute('role', 'alert');
  box.dataset.text = line;
  const message = document.createElement('span');
  message.textContent = line;
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.textContent = '×';
  dismiss.title = 'dismiss';
  dismiss.setAttribute('aria-label', 'dismiss this error');
  dismiss.addEventListener('click', () => box.remove());
  box.append(message, dismiss);
  container.append(box);
  while (container.querySelectorAll('.error').length > KEEP) container.querySelector('.error').remove();
}

export function clearErrors(container) {
  if (container) container.replaceChildren();
}
