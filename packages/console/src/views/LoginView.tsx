import { useState, type FormEvent } from 'react';
import { useAuth } from '../auth/AuthProvider.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { pageTitle, useDocumentTitle } from '../hooks/useDocumentTitle.js';

export function LoginView() {
  const { login, notice } = useAuth();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useDocumentTitle(pageTitle('Log in'));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(username, password);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <main className="login-page">
      <form className="login-card" onSubmit={submit}>
        <h1 className="brand large"><span className="brand-mark" aria-hidden="true">P</span> Pallas</h1>
        <p className="muted">Fleet manager for virtualized edge devices</p>
        {notice && <div className="notice">{notice}</div>}
        <label className="field">
          <span>User name</span>
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
        </label>
        <label className="field">
          <span>Password</span>
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        <ErrorNote error={error} />
        <button type="submit" className="button primary wide" disabled={busy || !username || !password}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </main>
  );
}
